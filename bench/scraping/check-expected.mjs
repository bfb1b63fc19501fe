// Compares a dump written by `playwright-baseline.mjs --dump FILE` with
// tests/fixtures/sites/expected.json (same rules a Rust test would apply: events matched
// by platform + externalId, faceValue compared as numbers, lat/lng within 1e-6, paths
// relative to the site's base URL). Prints the differences; exit 1 if there are any.
//
// Usage: node check-expected.mjs DUMP [EXPECTED]

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [dumpPath, expectedPath = path.resolve(here, '../../tests/fixtures/sites/expected.json')] = process.argv.slice(2);
if (!dumpPath) {
  process.stderr.write('usage: node check-expected.mjs DUMP [EXPECTED]\n');
  process.exit(2);
}
const dump = JSON.parse(fs.readFileSync(dumpPath, 'utf8'));
const expected = JSON.parse(fs.readFileSync(expectedPath, 'utf8'));
const problems = [];

if (dump.now !== expected.now) problems.push(`dump was made with now=${dump.now}, expected.json is for ${expected.now}`);

const got = new Map(dump.events.map(e => [`${e.platform}/${e.externalId}`, e]));
const wanted = new Map();
for (const site of Object.values(expected.sites)) {
  for (const e of site.events) wanted.set(`${e.platform}/${e.externalId}`, e);
}

function same(field, a, b) {
  if (field === 'lat' || field === 'lng') {
    if (a === null || b === null) return a === b;
    return Math.abs(a - b) < 1e-6;
  }
  if (field === 'faceValue') return Number(a) === Number(b);
  return JSON.stringify(a) === JSON.stringify(b);
}

for (const [key, exp] of wanted) {
  const e = got.get(key);
  if (!e) {
    problems.push(`${key}: missing`);
    continue;
  }
  for (const field of ['name', 'description', 'start', 'end', 'venueName', 'venueAddress', 'lat', 'lng',
    'externalUrl', 'images', 'qrAvailabilityTiming', 'classification']) {
    if (!same(field, e[field], exp[field])) {
      problems.push(`${key}: ${field} is ${JSON.stringify(e[field])}, expected ${JSON.stringify(exp[field])}`);
    }
  }
  if (e.waves.length !== exp.waves.length) {
    problems.push(`${key}: ${e.waves.length} waves, expected ${exp.waves.length}`);
  }
  exp.waves.forEach((w, i) => {
    const g = e.waves[i];
    if (!g) return;
    for (const field of Object.keys(w)) {
      if (!same(field, g[field], w[field])) {
        problems.push(`${key}: wave ${i} ${field} is ${JSON.stringify(g[field])}, expected ${JSON.stringify(w[field])}`);
      }
    }
  });
}
for (const key of got.keys()) if (!wanted.has(key)) problems.push(`${key}: not expected`);

if (problems.length) {
  process.stdout.write(problems.join('\n') + '\n');
  process.exit(1);
}
process.stdout.write(`ok: ${wanted.size} events match ${path.relative(process.cwd(), expectedPath)}\n`);
