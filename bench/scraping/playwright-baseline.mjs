// Baseline crawler for the scraping benchmark: Node.js + playwright-core driving the
// system Chromium over the three fixture sites (tests/fixtures/sites), with the flow the
// scrapers use (list pages -> detail pages, "Cargar más" until it is gone, Tickantel
// functions and the virtual-queue button), C pages at once in one browser. It extracts
// every field the scraper extracts (tests/fixtures/sites/README.md) but stores nothing.
//
// Usage:
//   node playwright-baseline.mjs <entraste-base> <redtickets-base> <tickantel-base>
//        [--concurrency 4] [--now 2026-11-25T15:00:00-03:00] [--nav-timeout-ms 15000]
//        [--executable /usr/lib/chromium/chromium] [--rounds 1] [--dump events.json]
// Prints one JSON line on stdout:
//   {"tool":"playwright-core","version":...,"pages":n,"events":n,"wall_s":...,
//    "pages_per_s":...,"concurrency":C, ...}

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const PW_VERSION = JSON.parse(
  fs.readFileSync(path.join(here, 'node_modules/playwright-core/package.json'), 'utf8'),
).version;

// ------------------------------------------------------------------ arguments

function parseArgs(argv) {
  const opts = {
    bases: [],
    concurrency: 4,
    now: '2026-11-25T15:00:00-03:00',
    navTimeoutMs: 15000,
    executable: process.env.CHROMIUM_PATH || '/usr/lib/chromium/chromium',
    rounds: 1,
    dump: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--concurrency' || a === '-c') opts.concurrency = Number(next());
    else if (a === '--now') opts.now = next();
    else if (a === '--nav-timeout-ms') opts.navTimeoutMs = Number(next());
    else if (a === '--executable') opts.executable = next();
    else if (a === '--rounds') opts.rounds = Number(next());
    else if (a === '--dump') opts.dump = next();
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else opts.bases.push(a.replace(/\/+$/, ''));
  }
  if (opts.bases.length !== 3) {
    throw new Error('give three base URLs: entraste redtickets tickantel');
  }
  if (!(opts.concurrency >= 1)) throw new Error('--concurrency must be >= 1');
  if (Number.isNaN(Date.parse(opts.now))) throw new Error('--now must be an RFC 3339 instant');
  return opts;
}

// ------------------------------------------------------------------ shared rules

// America/Montevideo has been UTC-3 all year since 2015.
const UY_OFFSET_MS = -3 * 3600 * 1000;
const DAY_MS = 86400 * 1000;

const MONTHS = {
  enero: 0, febrero: 1, marzo: 2, abril: 3, mayo: 4, junio: 5, julio: 6, agosto: 7,
  septiembre: 8, setiembre: 8, octubre: 9, noviembre: 10, diciembre: 11,
  ene: 0, feb: 1, mar: 2, abr: 3, may: 4, jun: 5, jul: 6, ago: 7, sep: 8, set: 8,
  oct: 9, nov: 10, dic: 11,
};

function month(name) {
  const m = MONTHS[name.toLowerCase().replace(/\.$/, '')];
  return m === undefined ? null : m;
}

// Instant (ms) of a wall-clock time in Montevideo; Date.UTC normalises overflow.
function uy(y, m, d, h = 0, mi = 0) {
  return Date.UTC(y, m, d, h, mi) - UY_OFFSET_MS;
}

function uyParts(ms) {
  const d = new Date(ms + UY_OFFSET_MS);
  return { y: d.getUTCFullYear(), m: d.getUTCMonth(), d: d.getUTCDate() };
}

function iso(ms) {
  const d = new Date(ms + UY_OFFSET_MS);
  const p = n => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}-03:00`;
}

function ymd(ms) {
  return iso(ms).slice(0, 10);
}

// Price text -> decimal string, or null when there is no number in it.
// Both separators: the last one is the decimal point. One kind only: a separator that
// occurs more than once, or once followed by exactly three digits, groups thousands;
// otherwise it is the decimal point.
function parsePrice(text) {
  const m = (text || '').match(/\d[\d.,]*/);
  if (!m) return null;
  let s = m[0].replace(/[.,]+$/, '');
  const lastDot = s.lastIndexOf('.');
  const lastComma = s.lastIndexOf(',');
  let intPart = s;
  let frac = '';
  if (lastDot >= 0 && lastComma >= 0) {
    const dec = Math.max(lastDot, lastComma);
    intPart = s.slice(0, dec).replace(/[.,]/g, '');
    frac = s.slice(dec + 1);
  } else if (lastDot >= 0 || lastComma >= 0) {
    const sep = lastDot >= 0 ? '.' : ',';
    const parts = s.split(sep);
    if (parts.length > 2 || parts[1].length === 3) {
      intPart = parts.join('');
    } else {
      intPart = parts[0];
      frac = parts[1];
    }
  }
  intPart = intPart.replace(/^0+(?=\d)/, '');
  return frac && /[1-9]/.test(frac) ? `${intPart}.${frac}` : intPart;
}

const BLOCK_TAGS = 'p|div|li|ul|ol|h[1-6]|tr|table|section|article|blockquote|header|footer|pre';

// innerHTML -> text: <br> and closing block tags become line breaks, other tags are
// removed, entities decoded, runs of blank lines collapse to one, lines trimmed.
function htmlToText(html) {
  if (!html) return null;
  const text = html
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(new RegExp(`</(?:${BLOCK_TAGS})\\s*>`, 'gi'), '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&')
    .replace(/\u00a0/g, ' ')
    .replace(/\n\s*\n\s*\n/g, '\n\n')
    .split('\n')
    .map(l => l.trim())
    .join('\n')
    .trim();
  return text || null;
}

function coords(lat, lng) {
  const a = Number(lat);
  const b = Number(lng);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return { lat: null, lng: null };
  if (Math.abs(a) < 0.001 && Math.abs(b) < 0.001) return { lat: null, lng: null };
  if (a < -90 || a > 90 || b < -180 || b > 180) return { lat: null, lng: null };
  return { lat: a, lng: b };
}

function relPath(url) {
  const u = new URL(url);
  return u.pathname + u.search;
}

function classify(waves) {
  if (waves.length === 0) return 'empty_wave';
  return waves.some(w => Number(w.faceValue) > 0) ? 'valid' : 'guest_list';
}

// ------------------------------------------------------------------ crawler core

class Crawl {
  constructor(browser, opts) {
    this.browser = browser;
    this.opts = opts;
    this.now = Date.parse(opts.now);
    this.queue = [];
    this.seen = new Set();
    this.events = [];
    this.pages = 0;
    this.failed = [];
    this.active = 0;
    this.waiters = [];
  }

  add(task) {
    const key = `${task.site}|${task.label}|${task.url.split('#')[0]}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.queue.push(task);
    this.wake();
  }

  wake() {
    while (this.waiters.length) this.waiters.shift()();
  }

  async next() {
    for (;;) {
      if (this.queue.length) return this.queue.shift();
      if (this.active === 0) return null;
      await new Promise(r => this.waiters.push(r));
    }
  }

  async worker(context) {
    for (;;) {
      const task = await this.next();
      if (!task) {
        this.wake();
        return;
      }
      this.active++;
      const page = await context.newPage();
      page.setDefaultTimeout(10000);
      page.setDefaultNavigationTimeout(this.opts.navTimeoutMs);
      this.pages++;
      const started = Date.now();
      try {
        await HANDLERS[task.site][task.label](this, page, task);
        if (process.env.BASELINE_DEBUG) process.stderr.write(`${Date.now() - started} ms ${task.label} ${task.url}\n`);
      } catch (err) {
        if (process.env.BASELINE_DEBUG) process.stderr.write(`${Date.now() - started} ms FAILED ${task.label} ${task.url}\n`);
        this.failed.push({ site: task.site, url: task.url, error: String(err.message).split('\n')[0] });
      } finally {
        await page.close().catch(() => {});
        this.active--;
        this.wake();
      }
    }
  }

  async goto(page, url) {
    const res = await page.goto(url, { waitUntil: 'domcontentloaded' });
    if (res && res.status() >= 400) throw new Error(`HTTP ${res.status()} for ${url}`);
    return res;
  }

  emit(event) {
    event.classification = classify(event.waves);
    this.events.push(event);
  }
}

// ------------------------------------------------------------------ Entraste

const entraste = {
  async LIST(c, page, t) {
    await c.goto(page, t.url);
    await page.waitForSelector('a.event-card', { timeout: 10000 });
    const hrefs = await page.$$eval('a.event-card', as => as.map(a => a.href));
    for (const href of hrefs) c.add({ site: 'entraste', label: 'DETAIL', url: href, base: t.base });
  },

  async DETAIL(c, page, t) {
    await c.goto(page, t.url);
    const raw = await page.evaluate(() => {
      const text = sel => document.querySelector(sel)?.textContent ?? null;
      const title = document.querySelector('.event-info-title');
      let lat = null;
      let lng = null;
      for (const s of document.querySelectorAll('script')) {
        const src = s.textContent || '';
        if (!src.includes('function initMap()')) continue;
        const a = src.match(/const\s+lat\s*=\s*(-?\d+(?:\.\d+)?)/);
        const b = src.match(/const\s+lng\s*=\s*(-?\d+(?:\.\d+)?)/);
        if (a && b) {
          lat = a[1];
          lng = b[1];
          break;
        }
      }
      const tickets = [...document.querySelectorAll('.ticket')].map(el => {
        const titleEl = el.querySelector('.ticket-description .title');
        let name = '';
        if (titleEl) {
          const clone = titleEl.cloneNode(true);
          clone.querySelectorAll('small').forEach(s => s.remove());
          name = clone.textContent.trim();
        }
        return {
          name,
          description: el.querySelector('.ticket-description .text')?.textContent ?? null,
          price: el.querySelector('.ticket-price .price')?.textContent ?? null,
          currency: el.querySelector('.ticket-price small')?.textContent ?? null,
          soldOut: el.classList.contains('tickets-soldout'),
          data: el.getAttribute('data-ticket'),
        };
      });
      return {
        name: title ? title.textContent.trim() : null,
        descriptionHtml: document.querySelector('#event-description')?.innerHTML ?? null,
        venueName: text('.location-section h3'),
        venueAddress: text('.location-section p'),
        dateText: text('.event-dates p'),
        imagebox: document.querySelector('img.hero-imagebox')?.src || null,
        flyerImage: document.querySelector('img.event-flyer-image')?.src || null,
        lat,
        lng,
        tickets,
      };
    });
    if (!raw.name) throw new Error('no .event-info-title');
    const dates = entrasteDates((raw.dateText || '').replace(/\s+/g, ' ').trim(), c.now);
    if (!dates) throw new Error(`unparseable date: ${raw.dateText}`);
    const waves = [];
    for (const tk of raw.tickets) {
      if (!tk.data) continue;
      const faceValue = parsePrice(tk.price);
      if (faceValue === null) continue;
      const cur = (tk.currency || '').trim().toUpperCase();
      const desc = (tk.description || '').trim();
      waves.push({
        externalId: String(JSON.parse(tk.data).etid),
        name: tk.name,
        description: desc || null,
        faceValue,
        currency: cur === 'USD' || cur === 'US$' ? 'USD' : 'UYU',
        isSoldOut: tk.soldOut,
        isAvailable: !tk.soldOut,
      });
    }
    const flyer = raw.imagebox || raw.flyerImage;
    const images = [];
    if (flyer) images.push({ type: 'flyer', url: relPath(flyer) });
    if (raw.flyerImage) images.push({ type: 'hero', url: relPath(raw.flyerImage) });
    const url = new URL(page.url());
    c.emit({
      externalId: url.pathname.split('/').filter(Boolean).pop(),
      platform: 'entraste',
      name: raw.name,
      description: htmlToText(raw.descriptionHtml),
      start: iso(dates.start),
      end: iso(dates.end),
      venueName: (raw.venueName || '').trim() || null,
      venueAddress: (raw.venueAddress || '').trim(),
      ...coords(raw.lat, raw.lng),
      externalUrl: url.pathname,
      images,
      waves,
      qrAvailabilityTiming: '6h',
    });
  },
};

const L = '[a-zA-ZáéíóúñÁÉÍÓÚÑ]+';

function entrasteDates(s, now) {
  const year = uyParts(now).y;
  let start;
  let end;
  let m;
  if (s.startsWith('Desde el')) {
    m = s.match(new RegExp(`^Desde el ${L}\\s+(\\d+)\\s+de\\s+(${L})\\s+a\\s+las\\s+(\\d+):(\\d+)\\s+hasta\\s+el\\s+${L}\\s+(\\d+)\\s+de\\s+(${L})\\s+a\\s+las\\s+(\\d+):(\\d+)`));
    if (!m) return null;
    const m1 = month(m[2]);
    const m2 = month(m[6]);
    if (m1 === null || m2 === null) return null;
    start = uy(year, m1, +m[1], +m[3], +m[4]);
    end = uy(year, m2, +m[5], +m[7], +m[8]);
    if (end < start) end = uy(year + 1, m2, +m[5], +m[7], +m[8]);
  } else if ((m = s.match(new RegExp(`(\\d+)\\s+de\\s+(${L})\\s*(?:desde\\s+)?las\\s+(\\d+):(\\d+)\\s+hasta\\s+las\\s+(\\d+):(\\d+)`)))) {
    const mo = month(m[2]);
    if (mo === null) return null;
    start = uy(year, mo, +m[1], +m[3], +m[4]);
    let mins = (+m[5] * 60 + +m[6]) - (+m[3] * 60 + +m[4]);
    if (mins < 0) mins += 24 * 60;
    end = start + mins * 60000;
  } else if ((m = s.match(new RegExp(`(\\d+)\\s+de\\s+(${L})\\s+a\\s+las\\s+(\\d+):(\\d+)`)))) {
    const mo = month(m[2]);
    if (mo === null) return null;
    start = uy(year, mo, +m[1], +m[3], +m[4]);
    end = +m[3] >= 20 ? uy(year, mo, +m[1] + 1, 6, 0) : start + 6 * 3600000;
  } else {
    return null;
  }
  const fullDaysAgo = t => Math.trunc((now - t) / DAY_MS);
  if (fullDaysAgo(start) > 5 && fullDaysAgo(end) > 5) {
    const bump = t => {
      const d = new Date(t + UY_OFFSET_MS);
      d.setUTCFullYear(d.getUTCFullYear() + 1);
      return d.getTime() - UY_OFFSET_MS;
    };
    start = bump(start);
    end = bump(end);
  }
  return { start, end };
}

// ------------------------------------------------------------------ RedTickets

const redtickets = {
  async LIST(c, page, t) {
    await c.goto(page, t.url);
    await page.waitForSelector('article.card', { timeout: 10000 });
    if (t.pageNo === 0) {
      const txt = await page.textContent('.wPageSelectorActual').catch(() => null);
      let total = 1;
      const m = txt && txt.match(/P[áa]gina\s+\d+\s+de\s+(\d+)/);
      if (m) total = Number(m[1]);
      else {
        const nums = await page.$$eval('.wPageSelector a', as => as.map(a => parseInt(a.textContent, 10)).filter(n => !Number.isNaN(n)));
        if (nums.length) total = Math.max(...nums);
      }
      for (let p = 1; p < total; p++) {
        c.add({ site: 'redtickets', label: 'LIST', url: `${t.base}/categoria/9/Fiestas/${p}`, base: t.base, pageNo: p });
      }
    }
    const hrefs = await page.$$eval('article.card a[href^="/evento/"]', as => as.map(a => a.href));
    for (const href of hrefs) {
      const m = new URL(href).pathname.match(/\/evento\/[^/]+\/(\d+)\/?$/);
      c.add({ site: 'redtickets', label: 'DETAIL', url: href, base: t.base, eventId: m ? m[1] : '' });
    }
  },

  async DETAIL(c, page, t) {
    await c.goto(page, t.url);
    await page.waitForSelector('#W0010TXTTITLE, .Title', { state: 'attached', timeout: 10000 });
    const raw = await page.evaluate(() => {
      const text = sel => document.querySelector(sel)?.textContent?.trim() ?? '';
      const iframe = document.querySelector('iframe[src*="maps.google.com"], iframe[src*="google.com/maps"]');
      const combo = [...document.querySelectorAll('#comboTicket option')].map(o => ({
        value: o.getAttribute('value'),
        text: o.textContent.trim(),
      }));
      const radio = [...document.querySelectorAll('#radioButtonTicket .id-input-container')].map(el => ({
        value: el.querySelector('input[name="Ticket"]')?.value ?? null,
        labels: [...el.querySelectorAll('.id-radio-tile-label')].map(l => l.textContent.trim()),
      }));
      const comboTime = document.querySelector('#comboTime option:not([value="0"])')?.textContent?.trim() || null;
      const radioTime = document.querySelector('#radioButtonTime .id-radio-tile-label')?.textContent?.trim() || null;
      return {
        name: text('#W0010TXTTITLE'),
        image: document.querySelector('img.EventImage')?.src || null,
        address: text('#W0010TXTADDRESS'),
        descriptionHtml: document.querySelector('.TableEventInfo .RowPadding p')?.innerHTML ?? null,
        minAge: text('#span_W0010vMINAGE'),
        iframe: iframe ? iframe.getAttribute('src') : null,
        dateText: text('#W0010TXTDATELONG'),
        time: comboTime || radioTime,
        combo,
        radio,
      };
    });
    if (!raw.name) return; // no title: skipped
    const parts = [];
    const desc = htmlToText(raw.descriptionHtml);
    if (desc) parts.push(desc);
    if (raw.minAge) parts.push(raw.minAge);
    let lat = null;
    let lng = null;
    const q = raw.iframe && raw.iframe.match(/q=(-?[\d.]+)\s*,\s*(-?[\d.]+)/);
    if (q) ({ lat, lng } = coords(q[1], q[2]));
    const waves = redticketsWaves(raw);
    const dates = /todos los d[íi]as/i.test(raw.dateText)
      ? redticketsMultiDay(raw.dateText, raw.time, c.now)
      : redticketsSingleDay(raw.dateText, raw.time, c.now);
    if (!dates.length) throw new Error(`unparseable date: ${raw.dateText}`);
    const url = new URL(page.url());
    for (const d of dates) {
      c.emit({
        externalId: d.suffix ? `${t.eventId}-${d.suffix}` : t.eventId,
        platform: 'redtickets',
        name: raw.name,
        description: parts.join('\n').trim() || null,
        start: iso(d.start),
        end: iso(d.start + 7 * 3600000),
        venueName: raw.address ? raw.address.split(' - ')[0].trim() || null : null,
        venueAddress: raw.address,
        lat,
        lng,
        externalUrl: url.pathname,
        images: raw.image ? [{ type: 'hero', url: relPath(raw.image) }] : [],
        waves,
        qrAvailabilityTiming: null,
      });
    }
  },
};

function soldOutText(s) {
  return /agotad/i.test(s) || /(^|\D)0\s+disponibles/i.test(s);
}

function redticketsWaves(raw) {
  const waves = [];
  for (const o of raw.combo) {
    if (o.value === '0' || !o.text || /elige/i.test(o.text)) continue;
    const m = o.text.match(/^(.+?)\s*\(\$\s*([\d.,]+)\)(.*)$/);
    if (!m) continue;
    const faceValue = parsePrice(m[2]);
    if (faceValue === null) continue;
    const sold = soldOutText(m[3]);
    waves.push({ externalId: o.value || `ticket-${waves.length}`, name: m[1].trim(), description: null, faceValue, currency: 'UYU', isSoldOut: sold, isAvailable: !sold });
  }
  if (waves.length) return waves;
  for (const r of raw.radio) {
    if (r.value === '0') continue;
    const [name = '', price = '', avail = ''] = r.labels;
    if (/elige/i.test(name)) continue;
    const faceValue = parsePrice(price);
    if (faceValue === null) continue;
    const sold = soldOutText(avail);
    waves.push({ externalId: r.value || `ticket-${waves.length}`, name, description: null, faceValue, currency: 'UYU', isSoldOut: sold, isAvailable: !sold });
  }
  return waves;
}

function redticketsSingleDay(text, time, now) {
  const m = text.match(new RegExp(`${L}\\s+(\\d+)\\s+de\\s+(${L})(?:\\s*-\\s*(\\d+)(?::(\\d+))?\\s*(?:hs)?)?`, 'i'));
  if (!m) return [];
  const mo = month(m[2]);
  if (mo === null) return [];
  let hour = 23;
  let minute = 0;
  if (m[3]) {
    hour = +m[3];
    minute = m[4] ? +m[4] : 0;
  } else if (time) {
    const tm = time.match(/(\d+):(\d+)/);
    if (tm) {
      hour = +tm[1];
      minute = +tm[2];
    }
  }
  const today = uyParts(now);
  let year = today.y;
  if (uy(year, mo, +m[1]) < uy(today.y, today.m, today.d)) year++;
  if (hour <= 5) {
    hour = 23;
    minute = 59;
  }
  return [{ start: uy(year, mo, +m[1], hour, minute), suffix: null }];
}

function redticketsMultiDay(text, time, now) {
  const m = text.match(new RegExp(`todos\\s+los\\s+d[íi]as\\s+de\\s+(${L})`, 'i'));
  if (!m) return [];
  const mo = month(m[1]);
  if (mo === null) return [];
  let hour = 23;
  let minute = 59;
  const tm = time && time.match(/(\d+):(\d+)/);
  if (tm) {
    hour = +tm[1];
    minute = +tm[2];
  }
  const out = [];
  for (let i = 0; i < 2; i++) {
    const day = uyParts(now + i * DAY_MS);
    if (day.m !== mo) continue;
    const start = uy(day.y, mo, day.d, hour, minute);
    out.push({ start, suffix: ymd(start) });
  }
  return out;
}

// ------------------------------------------------------------------ Tickantel

function canonicalTickantel(url) {
  const u = new URL(url);
  u.search = u.search.replace(/^\?\d+$/, '');
  u.hash = '';
  u.pathname = u.pathname.replace(/\/idFuncionSeleccionada\/\d+.*$/, '');
  return u;
}

const tickantel = {
  async LIST(c, page, t) {
    await c.goto(page, t.url);
    await page.waitForSelector('.col-lg-4 .item', { timeout: 30000 });
    for (let clicks = 0; clicks < 50; clicks++) {
      const link = page.locator('a.cargar-link');
      if (!(await link.isVisible().catch(() => false))) break;
      const before = await page.locator('.col-lg-4 .item').count();
      await page.waitForSelector('.loading', { state: 'hidden', timeout: 5000 }).catch(() => {});
      try {
        await link.click({ timeout: 5000 });
      } catch {
        break;
      }
      await page.waitForFunction(
        n => document.querySelectorAll('.col-lg-4 .item').length > n || !document.querySelector('a.cargar-link'),
        before,
        { timeout: 10000 },
      );
      await page.waitForSelector('.loading', { state: 'hidden', timeout: 10000 }).catch(() => {});
    }
    const hrefs = await page.$$eval(
      '.col-lg-4 .item a[href*="espectaculo"], .col-lg-4 .item a[href*="alta_demanda"]',
      as => as.map(a => a.href),
    );
    for (const href of hrefs) {
      const m = new URL(href).pathname.match(/\/(?:espectaculo|alta_demanda)\/(\d+)\//);
      c.add({ site: 'tickantel', label: 'DETAIL', url: href, base: t.base, eventId: m ? m[1] : '' });
    }
  },

  async DETAIL(c, page, t) {
    await c.goto(page, t.url);
    await page.waitForSelector('.espectaculo__title h1', { timeout: 15000 });
    const shared = await tickantelShared(page);
    if (!shared.name) return;
    let url = page.url();
    if (url.includes('/alta_demanda/')) {
      const altaDate = await tickantelAltaDate(page, c.now); // read before leaving the page
      const button = await page.$('button[name="irAVqueue"]');
      let bypassed = false;
      if (button) {
        const before = page.url();
        try {
          await Promise.all([
            page.waitForURL(u => u.href !== before, { waitUntil: 'domcontentloaded', timeout: 15000 }),
            button.click(),
          ]);
          url = page.url();
          bypassed = url.includes('/espectaculo/') && !url.includes('/alta_demanda/');
        } catch {
          bypassed = false;
        }
      }
      if (!bypassed) {
        if (altaDate === null) throw new Error('alta_demanda: no date');
        c.emit(tickantelEvent(shared, t.eventId, canonicalTickantel(t.url), altaDate, []));
        return;
      }
      await page.waitForSelector('.espectaculo__title h1', { timeout: 10000 });
    }
    const canonical = canonicalTickantel(url);
    const functions = await tickantelFunctions(page);
    if (functions.length > 1) {
      const suffix = (new URL(url).search.match(/^\?\d+$/) || [''])[0];
      const base = canonical.href.replace(/\/+$/, '');
      for (const fn of functions) {
        c.add({
          site: 'tickantel', label: 'FUNCTION', url: `${base}/idFuncionSeleccionada/${fn}${suffix}`,
          base: t.base, eventId: t.eventId, functionId: fn, shared, canonical: canonical.href,
        });
      }
      return;
    }
    const start = await tickantelFunctionDate(page, c.now);
    if (start === null) throw new Error('unparseable function date');
    const waves = await tickantelWaves(page);
    const id = functions.length === 1 ? `${t.eventId}-${functions[0]}` : t.eventId;
    c.emit(tickantelEvent(shared, id, canonical, start, waves));
  },

  async FUNCTION(c, page, t) {
    await c.goto(page, t.url);
    await page.waitForSelector('.filter-content h3', { timeout: 15000 });
    const start = await tickantelFunctionDate(page, c.now);
    if (start === null) throw new Error('unparseable function date');
    const waves = await tickantelWaves(page);
    c.emit(tickantelEvent(t.shared, `${t.eventId}-${t.functionId}`, new URL(t.canonical), start, waves));
  },
};

function tickantelEvent(shared, externalId, canonical, start, waves) {
  return {
    externalId,
    platform: 'tickantel',
    name: shared.name,
    description: shared.description,
    start: iso(start),
    end: iso(start + 4 * 3600000),
    venueName: shared.venueName,
    venueAddress: shared.venueName || 'Uruguay',
    lat: shared.lat,
    lng: shared.lng,
    externalUrl: canonical.pathname + canonical.search,
    images: shared.image ? [{ type: 'hero', url: relPath(shared.image) }] : [],
    waves,
    qrAvailabilityTiming: null,
  };
}

async function tickantelShared(page) {
  const raw = await page.evaluate(() => {
    let venue = null;
    for (const ul of document.querySelectorAll('.espectaculo__info ul.list-inline')) {
      const strong = ul.querySelector('strong');
      if (strong && strong.textContent.trim() === 'Lugar') {
        const span = ul.querySelector('li.list-inline-item span');
        if (span && span.textContent.trim()) {
          venue = span.textContent.trim();
          break;
        }
      }
    }
    return {
      name: document.querySelector('.espectaculo__title h1')?.textContent?.trim() || '',
      descriptionHtml: document.querySelector('#infoModal .modal-body')?.innerHTML ?? null,
      venue,
      osm: document.querySelector('#lugarModal iframe[src*="openstreetmap"]')?.getAttribute('src') || null,
      image: document.querySelector('.col-md-4 img.img-responsive')?.src || null,
    };
  });
  let lat = null;
  let lng = null;
  const m = raw.osm && raw.osm.match(/marker=(-?[\d.]+)(?:,|%2C)(-?[\d.]+)/i);
  if (m) ({ lat, lng } = coords(m[1], m[2]));
  return {
    name: raw.name,
    description: htmlToText(raw.descriptionHtml),
    venueName: raw.venue,
    lat,
    lng,
    image: raw.image,
  };
}

async function tickantelFunctions(page) {
  if (!(await page.$('#calendar-select'))) return [];
  await page.waitForSelector('#calendar-select .item a', { timeout: 3000 }).catch(() => {});
  const hrefs = await page.$$eval('#calendar-select .item a', as => as.map(a => a.getAttribute('href') || ''));
  const ids = [];
  for (const h of hrefs) {
    const m = h.match(/(\d+)\/?\s*$/);
    if (m && !ids.includes(m[1])) ids.push(m[1]);
  }
  return ids;
}

function nextYearIfPast(mo, day, now) {
  const today = uyParts(now);
  return uy(today.y, mo, day) < uy(today.y, today.m, today.d) ? today.y + 1 : today.y;
}

async function tickantelFunctionDate(page, now) {
  const h3 = await page.evaluate(() => document.querySelector('.filter-content h3')?.textContent || '');
  const m = h3.match(/(\d+)\s+de\s+([a-záéíóúñ]+)\s*[-–]\s*(\d+)(?::(\d+))?\s*hs/i);
  if (m && month(m[2]) !== null) {
    const mo = month(m[2]);
    return uy(nextYearIfPast(mo, +m[1], now), mo, +m[1], +m[3], m[4] ? +m[4] : 0);
  }
  const scripts = await page.$$eval('script[type="application/ld+json"]', els => els.map(e => e.textContent || ''));
  for (const s of scripts) {
    try {
      const data = JSON.parse(s);
      if (data['@type'] === 'Event' && typeof data.startDate === 'string') {
        const t = Date.parse(data.startDate);
        if (!Number.isNaN(t)) return t;
      }
    } catch {
      // not JSON
    }
  }
  return null;
}

async function tickantelAltaDate(page, now) {
  const dmy = await page.evaluate(() => document.querySelector('.espectaculo__info li strong + span span:last-child')?.textContent?.trim() || '');
  let m = dmy.match(/(\d+)\/(\d+)\/(\d{4})/);
  if (m) return uy(+m[3], +m[2] - 1, +m[1], 21, 0);
  const long = await page.evaluate(() => document.querySelector('.espectaculo__date span:last-child')?.textContent?.trim() || '');
  m = long.match(/(\d+)\s+de\s+([a-záéíóúñ]+)/i);
  if (m && month(m[2]) !== null) {
    const mo = month(m[2]);
    return uy(nextYearIfPast(mo, +m[1], now), mo, +m[1], 21, 0);
  }
  return null;
}

async function tickantelWaves(page) {
  const raw = await page.$$eval('.lista-visibilidad.auto-lista-visibilidad', els => els.map(el => ({
    name: el.querySelector('.auto-nombre-VisibilidadSector')?.textContent?.trim() || '',
    price: el.querySelector('.auto-col-costo')?.textContent?.trim() || '',
    avail: el.querySelector('.auto-disponibilidad')?.textContent?.trim() || '',
    disabled: el.classList.contains('disabled'),
    buy: el.querySelector('a[href*="idVisibilidad"]')?.href || null,
  })));
  const waves = [];
  for (const w of raw) {
    if (!w.name) continue;
    const faceValue = parsePrice(w.price);
    if (faceValue === null) continue;
    const sold = w.disabled || /agotada/i.test(w.avail);
    const vis = w.buy && w.buy.match(/idVisibilidad=(\d+)/);
    waves.push({
      externalId: vis ? vis[1] : `${w.name}-${faceValue}`,
      name: w.name,
      description: null,
      faceValue,
      currency: 'UYU',
      isSoldOut: sold,
      isAvailable: !sold,
    });
  }
  return waves;
}

const HANDLERS = { entraste, redtickets, tickantel };

// ------------------------------------------------------------------ main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = process.hrtime.bigint();
  const browser = await chromium.launch({
    executablePath: opts.executable,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-setuid-sandbox',
      '--disable-dev-shm-usage',
      '--disable-accelerated-2d-canvas',
      '--no-first-run',
      '--no-zygote',
      '--disable-gpu',
      '--disable-background-timer-throttling',
      '--disable-backgrounding-occluded-windows',
      '--disable-renderer-backgrounding',
      '--disable-blink-features=AutomationControlled',
      // the fixture pages embed map iframes of real hosts: fail them at once, offline
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
    ],
  });
  let pages = 0;
  let events = [];
  let failed = [];
  let eventCount = 0;
  let failedCount = 0;
  try {
    for (let round = 0; round < opts.rounds; round++) {
      const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
      const crawl = new Crawl(browser, opts);
      const [e, r, k] = opts.bases;
      crawl.add({ site: 'entraste', label: 'LIST', url: `${e}/`, base: e });
      crawl.add({ site: 'redtickets', label: 'LIST', url: `${r}/categoria/9/Fiestas/0`, base: r, pageNo: 0 });
      crawl.add({ site: 'tickantel', label: 'LIST', url: `${k}/inicio/buscar_grupo?2&cat_id=17`, base: k });
      await Promise.all(Array.from({ length: opts.concurrency }, () => crawl.worker(context)));
      await context.close();
      pages += crawl.pages;
      events = crawl.events;
      failed = crawl.failed;
      eventCount += crawl.events.length;
      failedCount += crawl.failed.length;
    }
  } finally {
    await browser.close();
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (opts.dump) {
    fs.writeFileSync(opts.dump, JSON.stringify({ now: opts.now, events, failed }, null, 2) + '\n');
  }
  const r3 = x => Math.round(x * 1000) / 1000;
  process.stdout.write(JSON.stringify({
    tool: 'playwright-core',
    version: PW_VERSION,
    pages,
    events: eventCount,
    wall_s: r3(wall),
    pages_per_s: r3(pages / wall),
    concurrency: opts.concurrency,
    failed_pages: failedCount,
    rounds: opts.rounds,
  }) + '\n');
}

main().catch(err => {
  process.stderr.write(`playwright-baseline: ${err.stack || err.message}\n`);
  process.exit(1);
});
