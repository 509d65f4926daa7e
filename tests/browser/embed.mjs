#!/usr/bin/env node
// Opens an origin's embed page (/embed/{event}) in headless Chromium (Debian's
// /usr/bin/chromium) and watches it for N seconds; prints ONE line of JSON with what the page
// measured (window.popcast: startup time, `waiting` events after playback began, live
// latency from EXT-X-PROGRAM-DATE-TIME, currentTime progress, hls.js errors). Exit 0 when
// playback started, currentTime advanced by at least N - 3 s after the first `playing`, with no
// `waiting` event and no fatal error; 1 otherwise; 2 on a usage error.
//
//   node embed.mjs --url http://127.0.0.1:PORT/embed/demo --seconds 20
//
// Everything stops by itself: the run is cut at N + 40 s, and Chromium dies with this process.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const CHROMIUM = '/usr/bin/chromium';
// Exactly these (see shared/TESTING-CLIENTS.md), as in play.mjs.
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
const STARTUP_LIMIT_S = 30;

let opts;
try {
  opts = parseArgs({ options: { url: { type: 'string' }, seconds: { type: 'string' } } }).values;
} catch (e) {
  console.error(`embed.mjs: ${e.message}`);
  process.exit(2);
}
const seconds = Number(opts.seconds);
if (!opts.url || !/^https?:\/\/(127\.|\[::1\]|localhost)/.test(opts.url) || !(seconds > 0)) {
  console.error('usage: node embed.mjs --url <loopback embed URL> --seconds N');
  process.exit(2);
}
const log = (line) => process.stderr.write(`embed.mjs: ${line}\n`);
const result = {
  ok: false, error: null, startupMs: null, waiting: 0, advancedSeconds: 0, watchedSeconds: 0,
  latency: { samples: 0, min: null, median: null, max: null, last: null }, fatal: null, errors: [],
};
let printed = false;
function finish(error) {
  if (printed) return;
  printed = true;
  result.error = error ?? null;
  result.ok = !error;
  process.stdout.write(JSON.stringify(result) + '\n');
  if (error) log(`FAILED: ${error}`);
  process.exitCode = result.ok ? 0 : 1;
}
setTimeout(() => { finish(`hard timeout after ${seconds + 40} s`); process.exit(1); }, (seconds + 40) * 1000);

const userDataDir = mkdtempSync(join(tmpdir(), 'popcast-chromium-'));
let browser;
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe'], timeout: 20_000,
  });
  process.on('exit', () => rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3 }));
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on('console', (m) => process.stderr.write(`browser console.${m.type()}: ${m.text()}\n`));
  page.on('pageerror', (e) => process.stderr.write(`browser page error: ${e.message}\n`));
  await page.goto(opts.url, { waitUntil: 'load', timeout: 15_000 });
  const stats = () => page.evaluate(() => window.popcast && JSON.parse(JSON.stringify(window.popcast)));

  // Wait for playback to start.
  let s = await stats();
  const t0 = Date.now();
  while (!(s && s.playing) && !(s && s.fatal) && Date.now() - t0 < STARTUP_LIMIT_S * 1000) {
    await new Promise((r) => setTimeout(r, 200));
    s = await stats();
  }
  if (!s) throw new Error('the page has no window.popcast');
  result.startupMs = s.startupMs;
  if (s.fatal) throw new Error(`fatal hls.js error before playback: ${s.fatal}`);
  if (!s.playing) throw new Error(`playback did not start within ${STARTUP_LIMIT_S} s`);

  // Watch for N seconds.
  const startTime = s.currentTime;
  const w0 = Date.now();
  while (Date.now() - w0 < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 500));
    s = await stats();
    if (s.fatal) break;
  }
  result.watchedSeconds = Math.round((Date.now() - w0) / 100) / 10;
  result.advancedSeconds = Math.round((s.currentTime - startTime) * 1000) / 1000;
  result.waiting = s.waiting;
  result.fatal = s.fatal;
  result.errors = s.errors;
  const l = s.latencies.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (l.length) {
    const r3 = (x) => Math.round(x * 1000) / 1000;
    result.latency = { samples: l.length, min: r3(l[0]), median: r3(l[l.length >> 1]), max: r3(l[l.length - 1]), last: r3(s.latency) };
    // The run as it went, one sample a second (every other 500 ms sample), for diagnosis.
    result.latencySeries = s.latencies.filter((_, i) => i % 2 === 0).map((x) => Math.round(x * 100) / 100);
  }
  if (s.fatal) finish(`fatal hls.js error: ${s.fatal}`);
  else if (s.waiting > 0) finish(`${s.waiting} waiting event(s) after playback began`);
  else if (result.advancedSeconds < seconds - 3) finish(`currentTime advanced ${result.advancedSeconds} s in ${seconds} s`);
  else if (!result.latency.samples) finish('no live latency measured (no EXT-X-PROGRAM-DATE-TIME?)');
  else finish();
} catch (e) {
  finish(String(e && e.message || e));
} finally {
  if (browser) await browser.close().catch(() => {});
  // Do not wait for the hard-timeout timer.
  process.exit(process.exitCode);
}
