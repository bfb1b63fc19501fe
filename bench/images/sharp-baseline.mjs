#!/usr/bin/env node
// Baseline for run-job's image pipeline: the original Node.js service's sharp operations,
// run on every image of a directory as a "hero" image (so all three outputs are made),
// timed per image. Prints one JSON line on stdout. See README.md beside this file.
//
//   node bench/images/sharp-baseline.mjs --dir DIR [--iterations N] [--concurrency C]
//        [--out OUTDIR] [--sharp-threads T|auto] [--warmup W] [--verbose]

import {readFile, readdir, writeFile, mkdir} from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {parseArgs} from 'node:util';
import {performance} from 'node:perf_hooks';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const USAGE = `usage: node sharp-baseline.mjs --dir DIR [--iterations N] [--concurrency C] [--out OUTDIR]
                              [--sharp-threads T|auto] [--warmup W] [--watermark PNG] [--verbose]

  --dir DIR            images to process (jpg, jpeg, png, webp, gif, avif, tif, tiff; not recursive)
  --iterations N       times each image is processed (default 3)
  --concurrency C      images in flight at once (default 2)
  --sharp-threads T    libvips threads per operation, sharp.concurrency(T) (default 1: C single-threaded
                       jobs, like the Rust side's C single-threaded workers); "auto" keeps sharp's default
  --warmup W           untimed jobs before timing starts (default 1)
  --out OUTDIR         write NAME.webp, NAME_thumb.webp and og_NAME.jpg for each image (first iteration)
  --watermark PNG      watermark image (default assets/watermark.png of the repository)
  --verbose            one line per image (size, luminance, dark/light, time) on stderr`;

let args;
try {
  ({values: args} = parseArgs({
    options: {
      dir: {type: 'string'},
      iterations: {type: 'string', default: '3'},
      concurrency: {type: 'string', default: '2'},
      'sharp-threads': {type: 'string', default: '1'},
      warmup: {type: 'string', default: '1'},
      out: {type: 'string'},
      watermark: {type: 'string', default: path.join(HERE, '..', '..', 'assets', 'watermark.png')},
      verbose: {type: 'boolean', default: false},
      help: {type: 'boolean', short: 'h', default: false},
    },
    strict: true,
  }));
} catch (err) {
  console.error(`sharp-baseline: ${err.message}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

function positiveInt(name, text, min = 1) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    console.error(`sharp-baseline: --${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}

if (!args.dir) {
  console.error(`sharp-baseline: --dir is required\n${USAGE}`);
  process.exit(2);
}
const ITERATIONS = positiveInt('iterations', args.iterations);
const CONCURRENCY = positiveInt('concurrency', args.concurrency);
const WARMUP = positiveInt('warmup', args.warmup, 0);
const SHARP_THREADS = args['sharp-threads'] === 'auto' ? null : positiveInt('sharp-threads', args['sharp-threads']);

// sharp's asynchronous work runs on libuv's thread pool (4 threads unless told otherwise); give it
// one thread per image in flight. The pool starts on first use, so this must precede any I/O.
if (CONCURRENCY > 4 && !process.env.UV_THREADPOOL_SIZE) {
  process.env.UV_THREADPOOL_SIZE = String(CONCURRENCY);
}
const {default: sharp} = await import('sharp');
if (SHARP_THREADS !== null) sharp.concurrency(SHARP_THREADS);

// ---------------------------------------------------------------------------------------------
// The original service's constants (apps/backend/src/services/scraping/image-service.ts).

const OG_W = 1200;
const OG_H = 630;
const OG_WATERMARK_W = 280;
const OG_BAR_H = 160;
const OG_BAR_BLUR = 20;
const OG_BAR_BLUR_CONTEXT = Math.ceil(OG_BAR_BLUR * 2.5); // 50 rows above the bar feed its blur
const OG_BG_BLUR = 30;
const THUMB = 560;
const WEBP = {quality: 75, effort: 4};
const DARK_THRESHOLD = 140; // luminance <= this: dark background

// Same gradient as the original: transparent at the top of the bar, opaque at the bottom.
const FEATHER_SVG = Buffer.from(
  `<svg xmlns="http://www.w3.org/2000/svg" width="${OG_W}" height="${OG_BAR_H}">` +
    `<defs><linearGradient id="f" x1="0" y1="0" x2="0" y2="1">` +
    `<stop offset="0%" stop-color="white" stop-opacity="0"/>` +
    `<stop offset="35%" stop-color="white" stop-opacity="0.7"/>` +
    `<stop offset="100%" stop-color="white" stop-opacity="1"/>` +
    `</linearGradient></defs>` +
    `<rect width="${OG_W}" height="${OG_BAR_H}" fill="url(#f)"/></svg>`,
);

// ---------------------------------------------------------------------------------------------
// Watermark: recoloured once, before timing (the original re-rendered an SVG with the two colour
// sets; the PNG asset replaces it). Neutral pixels (text ink) and coloured pixels (accent ink) get
// solid colours, alpha is kept: see assets/README.md.

const INKS = {
  dark: {text: [0xff, 0xff, 0xff], accent: [0xf2, 0x65, 0x9c]}, // on dark photos
  light: {text: [0x00, 0x00, 0x00], accent: [0xa6, 0x16, 0x5c]}, // on light photos
};
const NEUTRAL_SPREAD = 32; // max(R,G,B) - min(R,G,B) at most this: text ink

async function watermarkVariants(file) {
  const {data, info} = await sharp(file).ensureAlpha().raw().toBuffer({resolveWithObject: true});
  const variants = {};
  for (const [name, ink] of Object.entries(INKS)) {
    const px = Buffer.from(data);
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] === 0) {
        px[i] = px[i + 1] = px[i + 2] = 0;
        continue;
      }
      const spread = Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]);
      const c = spread <= NEUTRAL_SPREAD ? ink.text : ink.accent;
      px[i] = c[0];
      px[i + 1] = c[1];
      px[i + 2] = c[2];
    }
    variants[name] = await sharp(px, {raw: {width: info.width, height: info.height, channels: 4}})
      .png()
      .toBuffer();
  }
  return variants;
}

// ---------------------------------------------------------------------------------------------
// One hero image: the three outputs, in the original's order and with its exact calls.
// Note: a bare .toBuffer() writes the input's format, so every OG intermediate below (whose input
// is the WebP "original") is a lossy WebP encode + decode, as in the original service.

async function ogImage(source, watermarks) {
  // 1. blurred, darkened background filling the canvas
  const background = await sharp(source)
    .resize(OG_W, OG_H, {fit: 'cover', position: 'centre'})
    .blur(OG_BG_BLUR)
    .modulate({brightness: 0.6})
    .toBuffer();

  // 2. the whole picture, fitted inside the canvas (enlarged if smaller)
  const fitted = await sharp(source)
    .resize(OG_W, OG_H, {fit: 'inside', withoutEnlargement: false})
    .toBuffer();
  const fm = await sharp(fitted).metadata();
  const fw = fm.width || OG_W;
  const fh = fm.height || OG_H;
  const left = Math.round((OG_W - fw) / 2);
  const top = Math.round((OG_H - fh) / 2);

  // 3. brightness of the picture. sharp's stats() reads the INPUT image: the resize here is
  //    ignored, so the means are those of the full-size decoded WebP (kept as in the original).
  const stats = await sharp(source).resize(100, 100, {fit: 'inside'}).stats();
  const [r, g, b] = stats.channels.slice(0, 3).map((c) => Math.round(c.mean));
  const luminance = 0.299 * r + 0.587 * g + 0.114 * b;
  const dark = luminance <= DARK_THRESHOLD;

  // 4. composed base, then a frosted strip cut from it with context rows above for the blur
  const base = await sharp(background).composite([{input: fitted, left, top}]).toBuffer();
  const barTop = OG_H - OG_BAR_H;
  const context = Math.min(barTop, OG_BAR_BLUR_CONTEXT);
  const frostedTall = await sharp(base)
    .extract({left: 0, top: barTop - context, width: OG_W, height: OG_BAR_H + context})
    .blur(OG_BAR_BLUR)
    .modulate({brightness: 0.5, saturation: 0.7})
    .toBuffer();
  const strip = await sharp(frostedTall)
    .extract({left: 0, top: context, width: OG_W, height: OG_BAR_H})
    .toBuffer();
  const bar = await sharp(strip).composite([{input: FEATHER_SVG, blend: 'dest-in'}]).toBuffer();

  // 5. watermark in the colours for this brightness, fitted inside 280 x 144
  const mark = await sharp(dark ? watermarks.dark : watermarks.light)
    .resize(OG_WATERMARK_W, OG_BAR_H - 16, {fit: 'inside'})
    .toBuffer();
  const mm = await sharp(mark).metadata();
  const mw = mm.width || OG_WATERMARK_W;
  const mh = mm.height || OG_BAR_H - 16;

  // 6. bar and watermark over the base, as JPEG
  const og = await sharp(base)
    .composite([
      {input: bar, left: 0, top: barTop},
      {input: mark, left: Math.round((OG_W - mw) / 2), top: OG_H - mh - 12},
    ])
    .jpeg({quality: 85})
    .toBuffer();
  return {og, luminance, dark};
}

async function heroJob(input, watermarks) {
  const original = await sharp(input).webp(WEBP).toBuffer();
  const thumbnail = await sharp(input)
    .resize(THUMB, THUMB, {fit: 'cover', position: 'centre'})
    .webp(WEBP)
    .toBuffer();
  const {og, luminance, dark} = await ogImage(original, watermarks); // from the WebP, as the original
  return {original, thumbnail, og, luminance, dark};
}

// ---------------------------------------------------------------------------------------------

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.avif', '.tif', '.tiff']);

async function loadImages(dir) {
  const entries = await readdir(dir, {withFileTypes: true});
  const files = entries
    .filter((e) => e.isFile() && IMAGE_EXT.has(path.extname(e.name).toLowerCase()))
    .map((e) => e.name)
    .sort();
  const images = [];
  for (const name of files) {
    const bytes = await readFile(path.join(dir, name));
    const meta = await sharp(bytes).metadata();
    images.push({name, stem: path.parse(name).name, bytes, width: meta.width, height: meta.height});
  }
  // Output names use the file's stem; when two files share one (photo.png, photo.webp), add the extension.
  const count = new Map();
  for (const img of images) count.set(img.stem, (count.get(img.stem) || 0) + 1);
  for (const img of images) {
    if (count.get(img.stem) > 1) img.stem = `${img.stem}-${path.extname(img.name).slice(1).toLowerCase()}`;
  }
  return images;
}

function percentile(sorted, p) {
  // nearest-rank
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

const round = (x, digits = 1) => Number(x.toFixed(digits));

async function main() {
  const images = await loadImages(args.dir);
  if (images.length === 0) {
    console.error(`sharp-baseline: no images in ${args.dir}`);
    process.exit(1);
  }
  const watermarks = await watermarkVariants(args.watermark);
  if (args.out) await mkdir(args.out, {recursive: true});

  for (let i = 0; i < WARMUP; i++) {
    await heroJob(Buffer.from(images[i % images.length].bytes), watermarks);
  }

  const queue = [];
  for (let it = 0; it < ITERATIONS; it++) for (const img of images) queue.push({img, it});

  const times = [];
  const sums = {input: 0, original: 0, thumbnail: 0, og: 0};
  let darkImages = 0;
  let next = 0;

  async function worker() {
    while (next < queue.length) {
      const {img, it} = queue[next++];
      const input = Buffer.from(img.bytes); // a fresh buffer per job, like a fresh download
      const t0 = performance.now();
      const out = await heroJob(input, watermarks);
      const ms = performance.now() - t0;
      times.push(ms);
      if (it === 0) {
        sums.input += img.bytes.length;
        sums.original += out.original.length;
        sums.thumbnail += out.thumbnail.length;
        sums.og += out.og.length;
        if (out.dark) darkImages++;
        if (args.verbose) {
          console.error(
            `${img.name}\t${img.width}x${img.height}\tL=${out.luminance.toFixed(1)}\t` +
              `${out.dark ? 'dark' : 'light'}\t${ms.toFixed(1)} ms\t` +
              `webp=${out.original.length} thumb=${out.thumbnail.length} og=${out.og.length}`,
          );
        }
        if (args.out) {
          await writeFile(path.join(args.out, `${img.stem}.webp`), out.original);
          await writeFile(path.join(args.out, `${img.stem}_thumb.webp`), out.thumbnail);
          await writeFile(path.join(args.out, `og_${img.stem}.jpg`), out.og);
        }
      }
    }
  }

  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(Array.from({length: CONCURRENCY}, worker));
  const totalS = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuS = (cpu.user + cpu.system) / 1e6;

  const sorted = [...times].sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  console.log(
    JSON.stringify({
      tool: 'sharp',
      sharp: sharp.versions.sharp,
      libvips: sharp.versions.vips,
      images: images.length,
      iterations: ITERATIONS,
      concurrency: CONCURRENCY,
      sharp_threads: sharp.concurrency(),
      mean_ms_per_image: round(mean),
      p50_ms: round(percentile(sorted, 50)),
      p95_ms: round(percentile(sorted, 95)),
      total_s: round(totalS, 3),
      images_per_s: round(times.length / totalS, 2),
      cpu_ms_per_image: round((cpuS * 1000) / times.length),
      cpu_utilisation: round(cpuS / totalS, 2),
      peak_rss_mib: round(process.resourceUsage().maxRSS / 1024),
      dark_images: darkImages,
      outputs_bytes: sums,
    }),
  );
}

main().catch((err) => {
  console.error(`sharp-baseline: ${err.stack || err}`);
  process.exit(1);
});
