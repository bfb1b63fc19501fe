// Serves the three scraping fixture sites (tests/fixtures/sites/{entraste,redtickets,tickantel})
// on loopback, each at the root of its own port, with the dynamic routes the
// fixtures link to (tests/fixtures/sites/README.md):
//   - a path with a segment `se-cuelga` never gets an answer (the connection stays open),
//     or, with --hang off, answers 404 at once;
//   - a path with a segment `error-500` answers HTTP 500.
// Everything else is a static file; a directory is served from its index.html, and a
// directory asked for without its trailing slash is redirected (301) to it, query kept.
//
// With --photos DIR, every image the fixtures link to (/img/*.svg) is answered with a
// real photograph from DIR instead (chosen by the name's hash), so the scraping job's
// whole image path runs: download, decode, three outputs, storage.
//
// Usage: node serve-fixtures.mjs [--root DIR] [--host 127.0.0.1]
//          [--ports 8101,8102,8103] [--hang never|off] [--latency-ms N] [--photos DIR]
// Prints one JSON line with the base URLs once all three listen; stops on SIGTERM/SIGINT.

import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SITES = ['entraste', 'redtickets', 'tickantel'];

function parseArgs(argv) {
  const opts = {
    root: path.resolve(here, '../../tests/fixtures/sites'),
    host: '127.0.0.1',
    ports: [8101, 8102, 8103],
    hang: 'never',
    latencyMs: 0,
    photos: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--root') opts.root = path.resolve(next());
    else if (a === '--host') opts.host = next();
    else if (a === '--ports') opts.ports = next().split(',').map(Number);
    else if (a === '--hang') opts.hang = next();
    else if (a === '--latency-ms') opts.latencyMs = Number(next());
    else if (a === '--photos') opts.photos = path.resolve(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (opts.ports.length !== 3 || opts.ports.some(p => !Number.isInteger(p) || p < 0)) {
    throw new Error('--ports needs three port numbers');
  }
  if (!['never', 'off'].includes(opts.hang)) throw new Error('--hang is never or off');
  return opts;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

function send(res, status, body, type = 'text/html; charset=utf-8', extra = {}) {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function makeHandler(siteRoot, opts, hanging) {
  return async (req, res) => {
    if (opts.latencyMs > 0) await new Promise(r => setTimeout(r, opts.latencyMs));
    const url = new URL(req.url, 'http://fixture.invalid');
    let pathname;
    try {
      pathname = decodeURIComponent(url.pathname);
    } catch {
      return send(res, 400, 'bad path');
    }
    const segments = pathname.split('/').filter(Boolean);
    if (segments.includes('se-cuelga')) {
      if (opts.hang === 'off') return send(res, 404, '<!doctype html><title>404</title><h1>No encontrado</h1>');
      hanging.add(res); // never answered; destroyed on shutdown
      res.on('close', () => hanging.delete(res));
      return;
    }
    if (segments.includes('error-500')) {
      return send(res, 500, '<!doctype html><title>500</title><h1>Error interno del servidor</h1>');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
    if (segments.some(s => s === '..' || s.includes('\0'))) return send(res, 400, 'bad path');

    if (opts.photoFiles && segments[0] === 'img' && pathname.endsWith('.svg')) {
      let hash = 0;
      for (const ch of pathname) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
      const photo = opts.photoFiles[hash % opts.photoFiles.length];
      const body = await fs.readFile(photo);
      const type = photo.endsWith('.png') ? 'image/png' : 'image/jpeg';
      res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-store' });
      return res.end(req.method === 'HEAD' ? undefined : body);
    }
    let file = path.join(siteRoot, ...segments);
    let stat;
    try {
      stat = await fs.stat(file);
    } catch {
      return send(res, 404, '<!doctype html><title>404</title><h1>No encontrado</h1>');
    }
    if (stat.isDirectory()) {
      if (!pathname.endsWith('/')) {
        return send(res, 301, '', 'text/plain', { location: url.pathname + '/' + url.search });
      }
      file = path.join(file, 'index.html');
    }
    let body;
    try {
      body = await fs.readFile(file);
    } catch {
      return send(res, 404, '<!doctype html><title>404</title><h1>No encontrado</h1>');
    }
    const type = TYPES[path.extname(file)] || 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.photos) {
    opts.photoFiles = (await fs.readdir(opts.photos))
      .filter(n => /\.(jpe?g|png)$/i.test(n))
      .sort()
      .map(n => path.join(opts.photos, n));
  }
  const servers = [];
  const hanging = new Set();
  const bases = {};
  for (let i = 0; i < SITES.length; i++) {
    const site = SITES[i];
    const server = http.createServer(makeHandler(path.join(opts.root, site), opts, hanging));
    server.keepAliveTimeout = 5000;
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.ports[i], opts.host, resolve);
    });
    servers.push(server);
    bases[site] = `http://${opts.host}:${server.address().port}`;
  }
  process.stdout.write(JSON.stringify({ serving: bases, hang: opts.hang, latency_ms: opts.latencyMs }) + '\n');
  const stop = () => {
    for (const res of hanging) res.destroy();
    for (const s of servers) {
      s.close();
      s.closeAllConnections?.();
    }
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch(err => {
  process.stderr.write(`serve-fixtures: ${err.message}\n`);
  process.exit(2);
});
