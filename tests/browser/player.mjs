#!/usr/bin/env node
// Drives Popcast's web player, <popcast-player>, in headless Chromium (Debian's
// /usr/bin/chromium) and prints ONE line of JSON with what the player measured (its
// `stats`: state, startup, stalls, live latency p50/p95 against its target, currentTime
// progress, edge failovers, QoE beacons, errors).
//
// Two ways to open it:
//   --url URL                        a page whose `window.popcast` is the player (the
//                                    origin's /embed/{event} page);
//   --origin URL --event E [--token T] [--region R] [--target S]
//                                    a third-party "answer page" served by this script on
//                                    another loopback port that embeds the player from
//                                    ORIGIN/player.js, as a site embedding Popcast would;
//   --plain-url M3U8                 for comparison, plain hls.js (this harness's npm copy)
//                                    with its default settings on that playlist, measured
//                                    the same way (latency from EXT-X-PROGRAM-DATE-TIME).
// Then:
//   --seconds N         watch N seconds of playback (exit 0 when it played them with no
//                       stall and no fatal error, currentTime advancing at least N - 3 s);
//   --expect-state S    instead, wait (up to 30 s) for the player to reach state S (e.g.
//                       `not-allowed`) and exit 0 when it does;
//   --mark-after S      after S seconds of playback print `MARK {"node":…}` on stdout (the
//                       test then kills that edge); the result gets `failover`: when the
//                       player switched, and the longest time currentTime stood still
//                       after the mark. Stalls after the mark are reported, not failed on.
//   --within S          with --target: fail when any latency sample leaves target ± S.
//   --switch-every S    pick renditions from the player's quality menu as a viewer would:
//                       S s into playback the lowest, S later the highest, S later the
//                       lowest again; the result gets `forced` and `switches` (levels the
//                       player reported switching to), and the run fails unless each pick
//                       landed before the next one.
//   --trace             log every request the page makes (when, status, duration) to stderr.
//
// Everything stops by itself: the run is cut at N + 60 s, and Chromium dies with this
// process. Exit 1 on failure, 2 on a usage error.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
const LOOPBACK = /^https?:\/\/(127\.|\[::1\]|localhost)/;

let opts;
try {
  opts = parseArgs({
    options: {
      url: { type: 'string' }, origin: { type: 'string' }, event: { type: 'string' },
      token: { type: 'string' }, region: { type: 'string' }, target: { type: 'string' },
      seconds: { type: 'string' }, 'expect-state': { type: 'string' },
      'mark-after': { type: 'string' }, within: { type: 'string' }, debug: { type: 'boolean' }, trace: { type: 'boolean' },
      'plain-url': { type: 'string' }, 'switch-every': { type: 'string' },
    },
  }).values;
} catch (e) {
  console.error(`player.mjs: ${e.message}`);
  process.exit(2);
}
const seconds = Number(opts.seconds ?? 0);
const expectState = opts['expect-state'];
const markAfter = opts['mark-after'] === undefined ? null : Number(opts['mark-after']);
const within = opts.within === undefined ? null : Number(opts.within);
const switchEvery = opts['switch-every'] === undefined ? null : Number(opts['switch-every']);
const pageMode = opts.url ? 'url' : opts['plain-url'] ? 'plain' : 'host';
const usageOk =
  (pageMode === 'url' ? LOOPBACK.test(opts.url)
    : pageMode === 'plain' ? LOOPBACK.test(opts['plain-url'])
      : opts.origin && LOOPBACK.test(opts.origin) && /^[\w.-]+$/.test(opts.event ?? '')) &&
  (expectState ? true : seconds > 0) &&
  (markAfter === null || (markAfter > 0 && markAfter < seconds)) &&
  (within === null || within > 0) &&
  (switchEvery === null || (switchEvery > 0 && 3 * switchEvery < seconds));
if (!usageOk) {
  console.error('usage: node player.mjs (--url <loopback page> | --origin <loopback origin> --event E [--token T] [--region R] [--target S] | --plain-url <m3u8>)');
  console.error('                       (--seconds N [--mark-after S] [--within S] [--switch-every S] | --expect-state STATE)');
  process.exit(2);
}
const log = (line) => process.stderr.write(`player.mjs: ${line}\n`);
const result = {
  ok: false, error: null, page: pageMode, state: null, message: null, startupMs: null, waiting: 0,
  stallMs: 0, advancedSeconds: 0, watchedSeconds: 0, target: null,
  latency: { samples: 0, p50: null, p95: null, min: null, max: null, outside: 0 },
  nodes: [], failover: null, beacons: null, fatal: null, errors: [],
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
const hardLimit = (expectState ? STARTUP_LIMIT_S : seconds) + 60;
setTimeout(() => { finish(`hard timeout after ${hardLimit} s`); process.exit(1); }, hardLimit * 1000);

/**
 * Plain hls.js with its defaults, dressed as the player for this harness: `stats` with the
 * same fields, `latency` events, a shadow root holding the video.
 */
const PLAIN_PAGE = (url) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>plain hls.js</title></head>
<body><div id="p" style="width:960px;height:540px"></div><script src="/hls.min.js"></script><script>
const el = document.getElementById('p');
const root = el.attachShadow({ mode: 'open' });
root.innerHTML = '<video muted autoplay playsinline style="width:100%;height:100%"></video>';
const v = root.querySelector('video');
const t0 = performance.now();
const s = el.stats = { state: 'loading', message: '', playing: false, startupMs: null, stalls: 0, stallMs: 0,
  latency: null, latencyP50: null, latencyP95: null, target: null, currentTime: 0, failovers: [], errors: [],
  fatal: null, beacons: null, levels: [], node: 'plain', engine: 'hls.js defaults' };
let stallAt = null;
const hls = new Hls();
hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => { s.levels = d.levels.map((l) => ({ height: l.height })); });
hls.on(Hls.Events.ERROR, (_, d) => { s.errors.push(d.type + ':' + d.details); if (d.fatal) { s.fatal = d.details; s.state = 'error'; } });
v.addEventListener('playing', () => {
  if (!s.playing) s.startupMs = Math.round(performance.now() - t0);
  s.playing = true; s.state = 'playing';
  if (stallAt !== null) { s.stallMs += Math.round(performance.now() - stallAt); stallAt = null; }
});
v.addEventListener('waiting', () => { if (s.playing && !v.seeking && stallAt === null) { s.stalls++; stallAt = performance.now(); s.state = 'stalled'; } });
setInterval(() => {
  s.currentTime = v.currentTime;
  if (s.playing && hls.playingDate) {
    s.latency = (Date.now() - hls.playingDate.getTime()) / 1000;
    el.dispatchEvent(new CustomEvent('latency', { detail: { latency: s.latency } }));
  }
}, 250);
hls.loadSource(${JSON.stringify(url)});
hls.attachMedia(v);
v.play().catch(() => {});
window.popcast = el;
</script></body></html>`;

/** The third-party page: another origin (its own loopback port) embedding the player. */
function hostPage() {
  const attr = (k, v) => (v ? ` ${k}="${String(v).replace(/[^\w.:/?=&%-]/g, '')}"` : '');
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>An answer page</title>
<style>body{font:16px system-ui;margin:2em;max-width:960px} popcast-player{width:100%}</style></head>
<body><h1>How do I fix my bike's gears?</h1><p>Watch the live clinic below.</p>
<popcast-player id="p"${attr('origin', opts.origin)}${attr('token', opts.token)}${attr('region', opts.region)}${attr('target-latency', opts.target)}${opts.debug ? ' debug' : ''}${attr('event', opts.event)}></popcast-player>
<script type="module" src="${opts.origin.replace(/\/$/, '')}/player.js"></script>
<script>window.addEventListener('load', () => { window.popcast = document.getElementById('p'); });</script>
</body></html>`;
  return serve(html);
}

function serve(html) {
  const hlsJs = new URL('./node_modules/hls.js/dist/hls.min.js', import.meta.url);
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      if (req.url === '/hls.min.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(readFileSync(hlsJs));
        return;
      }
      res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.url === '/' ? html : 'not found');
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}/` }));
  });
}

const userDataDir = mkdtempSync(join(tmpdir(), 'popcast-chromium-'));
let browser;
let host;
try {
  let url = opts.url;
  if (pageMode === 'host') {
    host = await hostPage();
    url = host.url;
  } else if (pageMode === 'plain') {
    host = await serve(PLAIN_PAGE(opts['plain-url']));
    url = host.url;
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, ignoreDefaultArgs: true,
    args: [...FLAGS, `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe'], timeout: 20_000,
  });
  process.on('exit', () => rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3 }));
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on('console', (m) => process.stderr.write(`browser console.${m.type()}: ${m.text()}\n`));
  if (opts.trace) {
    // Every request the page makes, with when it started and how long it took (diagnosis).
    const t0 = Date.now();
    page.on('requestfinished', async (r) => {
      const t = r.timing();
      const res = await r.response().catch(() => null);
      log(`trace ${((Date.now() - t0) / 1000).toFixed(3)} ${res ? res.status() : '-'} ${Math.round(t.responseEnd)}ms ${r.url()}`);
    });
    page.on('requestfailed', (r) => log(`trace ${((Date.now() - t0) / 1000).toFixed(3)} FAILED ${r.failure()?.errorText} ${r.url()}`));
  }
  page.on('pageerror', (e) => {
    process.stderr.write(`browser page error: ${e.message}\n`);
    result.errors.push(`pageerror: ${e.message}`);
  });
  await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
  await page.waitForFunction(() => window.popcast && window.popcast.stats, null, { timeout: 15_000 });
  const stats = () => page.evaluate(() => JSON.parse(JSON.stringify(window.popcast.stats)));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const keep = (s) => {
    result.state = s.state;
    result.message = s.message;
    result.startupMs = s.startupMs;
    result.waiting = s.stalls;
    result.stallMs = s.stallMs;
    result.target = s.target;
    result.fatal = s.fatal;
    result.errors = [...result.errors.filter((e) => e.startsWith('pageerror')), ...s.errors].slice(-30);
    result.beacons = s.beacons;
    result.engine = s.engine;
    result.levels = s.levels.length;
    if (s.node && result.nodes[result.nodes.length - 1] !== s.node) result.nodes.push(s.node);
  };

  if (expectState) {
    let s = await stats();
    const t0 = Date.now();
    while (s.state !== expectState && Date.now() - t0 < STARTUP_LIMIT_S * 1000) {
      await sleep(200);
      s = await stats();
    }
    keep(s);
    result.visibleMessage = await page.evaluate(() => {
      const m = window.popcast.shadowRoot.querySelector('.msg');
      return m && !m.hidden ? m.textContent : null;
    });
    if (s.state !== expectState) finish(`state ${s.state} ("${s.message}"), not ${expectState}`);
    else if (!result.visibleMessage) finish(`state ${expectState} shows no message`);
    else finish();
  } else {
    // Wait for playback to start.
    let s = await stats();
    const t0 = Date.now();
    const terminal = new Set(['not-allowed', 'not-found', 'ended']);
    while (!s.playing && !s.fatal && !terminal.has(s.state) && Date.now() - t0 < STARTUP_LIMIT_S * 1000) {
      await sleep(200);
      s = await stats();
    }
    keep(s);
    if (!s.playing) throw new Error(`playback did not start within ${STARTUP_LIMIT_S} s (state ${s.state}: ${s.message})`);

    // Watch, sampling the latency the player reports on every `latency` event it fires.
    await page.evaluate(() => {
      window.__lat = [];
      window.__log = [];
      const t0 = performance.now();
      const at = () => Math.round(performance.now() - t0) / 1000;
      const p = window.popcast;
      p.addEventListener('latency', (e) => window.__lat.push(e.detail.latency));
      // What happened when, for diagnosis: stalls, failovers, errors, and the latency and
      // rate once a second.
      for (const name of ['stall', 'failover', 'error']) {
        p.addEventListener(name, (e) => window.__log.length < 200 && window.__log.push([at(), name, e.detail]));
      }
      setInterval(() => {
        const v = p.shadowRoot.querySelector('video');
        const b = v.buffered.length ? v.buffered.end(v.buffered.length - 1) - v.currentTime : 0;
        if (window.__log.length < 200) window.__log.push([at(), 'tick', { l: p.stats.latency, r: p.stats.rate, b: Math.round(b * 100) / 100 }]);
      }, 1000);
    });
    const startTime = s.currentTime;
    const w0 = Date.now();
    let mark = null;
    const forced = [];
    const switches = [];
    let level = s.level;
    while (Date.now() - w0 < seconds * 1000) {
      await sleep(100);
      s = await stats();
      const now = Date.now();
      const at = Math.round((now - w0) / 100) / 10;
      if (s.level !== level) {
        level = s.level;
        switches.push({ at, level, height: s.levels[level]?.height ?? null });
      }
      if (switchEvery !== null && forced.length < 3 && now - w0 >= (forced.length + 1) * switchEvery * 1000) {
        // Lowest, highest, lowest, chosen in the quality menu (a <select> in the shadow root).
        const byHeight = s.levels.map((l, i) => ({ i, h: l.height })).sort((a, b) => a.h - b.h);
        const pick = forced.length === 1 ? byHeight[byHeight.length - 1] : byHeight[0];
        if (pick) {
          await page.evaluate((i) => {
            const sel = window.popcast.shadowRoot.querySelector('select.quality');
            sel.value = String(i);
            sel.dispatchEvent(new Event('change'));
          }, pick.i);
          forced.push({ at, level: pick.i, height: pick.h });
        }
      }
      if (markAfter !== null && !mark && now - w0 >= markAfter * 1000) {
        mark = { at: now, node: s.node, currentTime: s.currentTime, lastMove: now, lastTime: s.currentTime, frozenMs: 0 };
        process.stdout.write(`MARK ${JSON.stringify({ node: s.node })}\n`);
      } else if (mark) {
        if (s.currentTime > mark.lastTime + 0.01) {
          mark.lastTime = s.currentTime;
          mark.lastMove = now;
        }
        mark.frozenMs = Math.max(mark.frozenMs, now - mark.lastMove);
        if (mark.switchedAt === undefined && s.failovers.some((f) => f.from === mark.node)) mark.switchedAt = now;
      }
      if (s.fatal) break;
    }
    keep(s);
    if (switchEvery !== null) {
      result.forced = forced;
      result.switches = switches;
    }
    const landed = forced.every((f, i) =>
      switches.some((w) => w.at >= f.at && w.level === f.level && w.at < (forced[i + 1]?.at ?? Infinity)));
    result.watchedSeconds = Math.round((Date.now() - w0) / 100) / 10;
    result.advancedSeconds = Math.round((s.currentTime - startTime) * 1000) / 1000;
    result.log = await page.evaluate(() => window.__log);
    const lat = (await page.evaluate(() => window.__lat)).filter(Number.isFinite).sort((a, b) => a - b);
    const r3 = (x) => Math.round(x * 1000) / 1000;
    const pct = (p) => lat[Math.min(lat.length, Math.max(1, Math.ceil((p / 100) * lat.length))) - 1];
    if (lat.length) {
      result.latency = {
        samples: lat.length, p50: r3(pct(50)), p95: r3(pct(95)), min: r3(lat[0]), max: r3(lat[lat.length - 1]),
        outside: within === null ? 0 : lat.filter((l) => Math.abs(l - s.target) > within).length,
        player: { p50: s.latencyP50 && r3(s.latencyP50), p95: s.latencyP95 && r3(s.latencyP95) },
      };
    }
    if (mark) {
      const f = s.failovers.find((f) => f.from === mark.node) ?? null;
      result.failover = {
        from: mark.node, to: f && f.to, why: f && f.why,
        detectedMs: mark.switchedAt === undefined ? null : mark.switchedAt - mark.at,
        resumedMs: f && f.resumedMs,
        frozenMs: mark.frozenMs,
        advancedAfterMark: r3(s.currentTime - mark.currentTime),
        markedSecondsBeforeEnd: r3((Date.now() - mark.at) / 1000),
      };
    }
    if (s.fatal) finish(`fatal player error: ${s.fatal}`);
    else if (!mark && s.stalls > 0) finish(`${s.stalls} stall(s) after playback began`);
    else if (result.advancedSeconds < seconds - 3) finish(`currentTime advanced ${result.advancedSeconds} s in ${seconds} s`);
    else if (!result.latency.samples) finish('no live latency measured (no EXT-X-PROGRAM-DATE-TIME?)');
    else if (result.latency.outside > 0) finish(`${result.latency.outside} latency sample(s) outside ${s.target} ± ${within} s`);
    else if (mark && !result.failover.to) finish(`no failover away from ${mark.node}`);
    else if (switchEvery !== null && (forced.length < 3 || !landed)) finish(`quality picks did not all land: forced ${JSON.stringify(forced)}, switches ${JSON.stringify(switches)}`);
    else finish();
  }
} catch (e) {
  finish(String((e && e.message) || e));
} finally {
  if (browser) await browser.close().catch(() => {});
  if (host) host.server.close();
  // Do not wait for the hard-timeout timer.
  process.exit(process.exitCode);
}
