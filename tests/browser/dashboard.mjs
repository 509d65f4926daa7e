#!/usr/bin/env node
// Opens the origin's operator dashboard (/dashboard) in headless Chromium (Debian's
// /usr/bin/chromium), waits until it shows the selected event's stats with a drawn viewers
// chart, takes a full-page screenshot and prints ONE line of JSON with what the page shows:
//   { ok, error, state, events: [ids], polylines: { series: points, ... }, tiles: { viewers,
//     success, startup, latency, rebuffer, sessions }, regions: [names], edges: [nodes],
//     consoleErrors: [...], pageErrors: [...], screenshot: path|null }
// Exit 0 when, within --seconds (default 30), body[data-state] became "ready", the
// chart-viewers svg had a polyline of at least 2 points and the success tile showed a value,
// with no page error (uncaught exception); 1 otherwise (the JSON and, when possible, the
// screenshot are still written); 2 on a usage error.
//
//   node dashboard.mjs --url 'http://127.0.0.1:PORT/dashboard?event=ev#token=TOKEN' \
//     --screenshot /tmp/dashboard.png [--seconds 30]
//
// Everything stops by itself: the run is cut at N + 30 s, and Chromium dies with this process.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const CHROMIUM = '/usr/bin/chromium';
// Exactly these (see shared/TESTING-CLIENTS.md), as in play.mjs and player.mjs.
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

const usage = () => {
  console.error("usage: node dashboard.mjs --url 'http://127.0.0.1:PORT/dashboard?event=ID#token=TOKEN' --screenshot OUT.png [--seconds N]");
  process.exit(2);
};
let opts;
try {
  opts = parseArgs({
    options: { url: { type: 'string' }, screenshot: { type: 'string' }, seconds: { type: 'string' } },
  }).values;
} catch (e) {
  console.error(`dashboard.mjs: ${e.message}`);
  usage();
}
const seconds = opts.seconds === undefined ? 30 : Number(opts.seconds);
const loopback = (raw) => {
  let u;
  try { u = new URL(raw); } catch { return false; }
  return (u.protocol === 'http:' || u.protocol === 'https:')
    && (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(u.hostname) || u.hostname === '[::1]' || u.hostname === 'localhost');
};
if (!opts.url || !loopback(opts.url) || !opts.screenshot || !(seconds > 0)) usage();

const log = (line) => process.stderr.write(`dashboard.mjs: ${line}\n`);
const result = {
  ok: false, error: null, state: null, events: [], polylines: {},
  tiles: { viewers: null, success: null, startup: null, latency: null, rebuffer: null, sessions: null },
  regions: [], edges: [], consoleErrors: [], pageErrors: [], screenshot: null,
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
setTimeout(() => { finish(`hard timeout after ${seconds + 30} s`); process.exit(1); }, (seconds + 30) * 1000);

// What the page shows (runs in the page).
function snapshot() {
  const text = (sel) => {
    const e = document.querySelector(sel);
    return e ? e.textContent.replace(/\s+/g, ' ').trim() : null;
  };
  const count = (p) => (p || '').trim().split(/\s+/).filter(Boolean).length;
  const polylines = {};
  for (const p of document.querySelectorAll('svg[data-testid^="chart-"] polyline[data-series]')) {
    const name = p.getAttribute('data-series');
    polylines[name] = (polylines[name] || 0) + count(p.getAttribute('points'));
  }
  const viewerPoints = Math.max(0, ...[...document.querySelectorAll('svg[data-testid="chart-viewers"] polyline')]
    .map((p) => count(p.getAttribute('points'))));
  const tiles = {};
  for (const k of ['viewers', 'success', 'startup', 'latency', 'rebuffer', 'sessions']) tiles[k] = text(`[data-testid="tile-${k}"]`);
  return {
    state: document.body ? document.body.dataset.state ?? null : null,
    events: [...document.querySelectorAll('table[data-testid="events"] tbody tr[data-event]')].map((tr) => tr.dataset.event),
    polylines,
    viewerPoints,
    tiles,
    regions: [...document.querySelectorAll('table[data-testid="regions"] tr[data-region]')].map((tr) => tr.dataset.region),
    edges: [...document.querySelectorAll('table[data-testid="edges"] tr[data-edge]')].map((tr) => tr.dataset.edge),
  };
}
const ready = (s) => !!s && s.state === 'ready' && s.viewerPoints >= 2
  && !!s.tiles.success && s.tiles.success !== '—';
function record(s) {
  if (!s) return;
  result.state = s.state;
  result.events = s.events;
  result.polylines = s.polylines;
  result.tiles = s.tiles;
  result.regions = s.regions;
  result.edges = s.edges;
}

const userDataDir = mkdtempSync(join(tmpdir(), 'popcast-chromium-'));
let browser;
let page;
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe'], timeout: 20_000,
  });
  process.on('exit', () => rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3 }));
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => {
    process.stderr.write(`browser console.${m.type()}: ${m.text()}\n`);
    if (m.type() === 'error' && result.consoleErrors.length < 50) result.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => {
    process.stderr.write(`browser page error: ${e.message}\n`);
    if (result.pageErrors.length < 50) result.pageErrors.push(e.message);
  });
  const deadline = Date.now() + seconds * 1000;
  await page.goto(opts.url, { waitUntil: 'load', timeout: Math.min(15_000, seconds * 1000) });

  let s = await page.evaluate(snapshot).catch(() => null);
  while (!ready(s) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    s = await page.evaluate(snapshot).catch(() => s);
  }
  record(s);
  const held = ready(s);
  try {
    await page.screenshot({ path: opts.screenshot, fullPage: true, timeout: 15_000 });
    result.screenshot = opts.screenshot;
  } catch (e) {
    log(`no screenshot: ${e.message}`);
  }
  if (!held) {
    const why = !s ? 'the page could not be read'
      : s.state !== 'ready' ? `body[data-state] is ${JSON.stringify(s.state)}, not "ready"`
      : s.viewerPoints < 2 ? `chart-viewers has ${s.viewerPoints} point(s), not 2 or more`
      : `tile-success shows ${JSON.stringify(s.tiles.success)}`;
    finish(`not ready within ${seconds} s: ${why}`);
  } else if (result.pageErrors.length) {
    finish(`${result.pageErrors.length} page error(s): ${result.pageErrors[0]}`);
  } else if (!result.screenshot) {
    finish(`the screenshot could not be written to ${opts.screenshot}`);
  } else {
    finish();
  }
} catch (e) {
  if (page && !result.screenshot) {
    record(await page.evaluate(snapshot).catch(() => null));
    await page.screenshot({ path: opts.screenshot, fullPage: true, timeout: 10_000 })
      .then(() => { result.screenshot = opts.screenshot; }, () => {});
  }
  finish(String(e && e.message || e));
} finally {
  if (browser) await browser.close().catch(() => {});
  // Do not wait for the hard-timeout timer.
  process.exit(process.exitCode);
}
