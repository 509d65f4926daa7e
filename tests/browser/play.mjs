#!/usr/bin/env node
// Plays an HLS / LL-HLS URL with hls.js in headless Chromium (Debian's /usr/bin/chromium) and
// prints ONE line of JSON with what the viewer saw. Exit 0 when at least 1 s of media played
// with no fatal hls.js error (and, with --expect-live, the stream was live); 1 otherwise;
// 2 on a usage error. Diagnostics (hls.js errors, browser console lines) go to stderr.
//
//   node play.mjs --url <m3u8 URL> --seconds N [--low-latency] [--expect-live] [--screenshot f.png]
//                 [--trust-spki <base64 SHA-256 of a server certificate's SPKI>]
//                 [--cmcd-sid <session id> [--cmcd-cid <content id>]] [--switch-every S]
//
// --switch-every S forces renditions as a viewer's quality menu would (hls.currentLevel, or
// hls.nextLevel with --switch-with nextLevel):
// S seconds after playback starts the lowest, S later the highest, S later the lowest again.
// `switches` lists the levels hls.js switched to ({at, level, height}); `stalls` counts
// `waiting` events after playback began, switches included.
// --trace logs every request the page makes (when it ended, status, duration) and hls.js's
// debug log to stderr.
// --cmcd-sid turns on hls.js's CMCD (CTA-5004, as a query argument) with that session id.
// --trust-spki lets Chromium accept a test server's certificate (Chromium's
// --ignore-certificate-errors-spki-list, which TESTING-CLIENTS.md names). The result's
// `protocols` counts the stream server's responses by the protocol Chromium used for them
// ("http/1.1", "h2", "h3"), from the DevTools Network domain.
//
// The page is served from a private 127.0.0.1 server on a random port, so the stream server
// must send `Access-Control-Allow-Origin: *`. Every process stops by itself: the run is cut
// at N + 30 s whatever happens, and Chromium dies with this process.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const CHROMIUM = '/usr/bin/chromium';
// Exactly these (see shared/TESTING-CLIENTS.md); play.mjs adds only a fresh --user-data-dir, the
// DevTools pipe playwright talks over and, when asked, one SPKI to trust. No QUIC, nothing that
// phones home.
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
const MIN_PLAYED_SECONDS = 1;
const HARD_EXTRA_SECONDS = 30;

const usage = 'usage: node play.mjs --url <m3u8 URL> --seconds N [--low-latency] [--expect-live] [--screenshot file.png] [--trust-spki B64]';
let opts;
try {
  opts = parseArgs({
    options: {
      url: { type: 'string' },
      seconds: { type: 'string' },
      'low-latency': { type: 'boolean', default: false },
      'expect-live': { type: 'boolean', default: false },
      screenshot: { type: 'string' },
      'trust-spki': { type: 'string' },
      'cmcd-sid': { type: 'string' },
      'cmcd-cid': { type: 'string' },
      'switch-every': { type: 'string' },
      'switch-with': { type: 'string', default: 'currentLevel' },
      trace: { type: 'boolean', default: false },
    },
  }).values;
} catch (e) {
  console.error(`play.mjs: ${e.message}\n${usage}`);
  process.exit(2);
}
const seconds = Number(opts.seconds);
const spki = opts['trust-spki'];
if (!opts.url || !/^https?:\/\//.test(opts.url) || !(seconds > 0)
    || (spki !== undefined && !/^[A-Za-z0-9+/]{43}=$/.test(spki))) {
  console.error(usage);
  process.exit(2);
}

const log = (line) => process.stderr.write(`play.mjs: ${line}\n`);
const t0 = Date.now();

// The result, filled in as we learn things; printed exactly once.
const result = {
  ok: false, error: null, hlsVersion: null, mse: null, live: null,
  playedSeconds: 0, framesDecoded: 0, droppedFrames: 0, stalls: 0, firstPlayingMs: null,
  liveLatency: null, levels: [], bufferCodecs: {}, fatalErrors: [], nonFatalErrors: [],
  videoWidth: 0, videoHeight: 0, requests: {}, protocols: {},
};
let printed = false;
function finish(error) {
  if (printed) return;
  printed = true;
  if (!error) {
    if (result.fatalErrors.length) error = `fatal hls.js error: ${result.fatalErrors.join(', ')}`;
    else if (opts['expect-live'] && result.live !== true) error = `stream is not live (live=${result.live})`;
    else if (!(result.playedSeconds >= MIN_PLAYED_SECONDS)) error = `played ${result.playedSeconds} s of media, less than ${MIN_PLAYED_SECONDS} s`;
  }
  result.error = error ?? null;
  result.ok = !error;
  process.stdout.write(JSON.stringify(result) + '\n');
  if (error) log(`FAILED after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${error}`);
  process.exitCode = result.ok ? 0 : 1;
}

// Hard limit: print what we have and exit; playwright SIGKILLs Chromium's process group on exit.
setTimeout(() => {
  finish(`hard timeout: no result within ${seconds + HARD_EXTRA_SECONDS} s`);
  process.exit(1);
}, (seconds + HARD_EXTRA_SECONDS) * 1000);

// --- the test page and hls.js, from a loopback server on a random port ---
const here = dirname(fileURLToPath(import.meta.url));
const hlsJs = readFileSync(join(here, 'node_modules/hls.js/dist/hls.min.js'));
const PAGE = `<!doctype html><meta charset="utf-8"><title>popcast player test</title>
<link rel="icon" href="data:,">
<style>body{margin:0;background:#000;overflow:hidden}video{display:block;width:100vw;height:100vh}</style>
<video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
window.popcast = {
  start(url, lowLatency, cmcd, debug) {
    const v = document.getElementById('v');
    const s = this.state = {
      fatal: [], nonFatal: [], kinds: {}, bufferCodecs: {}, stalls: 0, playing: false, firstPlayingMs: null,
      switches: [], forced: [], stallsAt: [],
      mse: {
        avc1: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f"'),
        mp4a: MediaSource.isTypeSupported('audio/mp4; codecs="mp4a.40.2"'),
      },
    };
    if (!Hls.isSupported()) { s.fatal.push('hlsNotSupported'); return; }
    const config = { lowLatencyMode: lowLatency, debug: !!debug };
    if (cmcd) config.cmcd = { sessionId: cmcd.sid, contentId: cmcd.cid, useHeaders: false };
    const hls = this.hls = new Hls(config);
    const kind = (u, k) => { if (u) s.kinds[u] = k; };
    hls.on(Hls.Events.MANIFEST_LOADING, (_, d) => kind(d.url, 'playlist'));
    hls.on(Hls.Events.LEVEL_LOADING, (_, d) => kind(d.url, 'playlist'));
    hls.on(Hls.Events.AUDIO_TRACK_LOADING, (_, d) => kind(d.url, 'playlist'));
    hls.on(Hls.Events.FRAG_LOADING, (_, d) => {
      if (d.part) kind(d.part.url, 'part');
      else kind(d.frag.url, d.frag.sn === 'initSegment' ? 'init' : 'segment');
    });
    hls.on(Hls.Events.BUFFER_CODECS, (_, d) => {
      for (const t in d) if (d[t] && d[t].codec) s.bufferCodecs[t] = d[t].codec;
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => v.play().catch((e) => console.warn('video.play(): ' + e)));
    hls.on(Hls.Events.ERROR, (_, d) => {
      (d.fatal ? s.fatal : s.nonFatal).push(d.details);
      if (d.details === 'bufferSeekOverHole') console.warn('hole at ' + Math.round(performance.now() - s.t0) + ' ms: ' + JSON.stringify({ hole: d.hole, reason: d.reason, currentTime: v.currentTime }));
      const code = d.response && d.response.code ? ' HTTP ' + d.response.code : '';
      console.warn('hls.js ' + (d.fatal ? 'FATAL ' : '') + d.type + '/' + d.details + code +
        (d.url || (d.frag && d.frag.url) ? ' ' + (d.url || d.frag.url) : '') +
        (d.reason ? ' (' + d.reason + ')' : '') + (d.error ? ': ' + d.error.message : ''));
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => {
      const l = hls.levels[d.level];
      s.switches.push({ at: Math.round(performance.now() - s.t0), level: d.level, height: l ? l.height : null });
    });
    v.addEventListener('playing', () => {
      if (!s.playing) { s.playing = true; s.firstPlayingMs = Math.round(performance.now() - s.t0); }
    });
    v.addEventListener('waiting', () => {
      if (!s.playing) return;
      s.stalls++;
      s.stallsAt.push({ at: Math.round(performance.now() - s.t0), time: Math.round(v.currentTime * 1000) / 1000 });
    });
    v.addEventListener('error', () => s.fatal.push('mediaElementError: ' + (v.error && (v.error.code + ' ' + v.error.message))));
    s.t0 = performance.now();
    hls.attachMedia(v);
    hls.loadSource(url);
  },
  force(level, how) {
    const hls = this.hls, s = this.state;
    const to = level < 0 ? hls.levels.length - 1 : level;
    s.forced.push({ at: Math.round(performance.now() - s.t0), level: to });
    // currentLevel: immediate (hls.js flushes its buffer and refetches); nextLevel: from the
    // next fragment on (what hls.js's own ABR does going up).
    if (how === 'nextLevel') hls.nextLevel = to; else hls.currentLevel = to;
  },
  snapshot() {
    const v = document.getElementById('v'), s = this.state, hls = this.hls;
    let played = 0;
    for (let i = 0; i < v.played.length; i++) played += v.played.end(i) - v.played.start(i);
    const q = v.getVideoPlaybackQuality();
    const lvl = hls && hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0];
    const live = lvl && lvl.details ? lvl.details.live : null;
    return {
      hlsVersion: Hls.version, mse: s.mse, live,
      playedSeconds: Math.round(played * 1000) / 1000,
      framesDecoded: q.totalVideoFrames, droppedFrames: q.droppedVideoFrames,
      stalls: s.stalls, firstPlayingMs: s.firstPlayingMs,
      liveLatency: live && hls.latency > 0 ? Math.round(hls.latency * 1000) / 1000 : null,
      levels: hls ? hls.levels.map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate,
        codecs: l.codecs || [l.videoCodec, l.audioCodec].filter(Boolean).join(',') || null })) : [],
      bufferCodecs: s.bufferCodecs,
      fatalErrors: s.fatal, nonFatalErrors: s.nonFatal,
      videoWidth: v.videoWidth, videoHeight: v.videoHeight, kinds: s.kinds, currentTime: v.currentTime,
      switches: s.switches, forced: s.forced, stallsAt: s.stallsAt,
    };
  },
};
</script>`;
const pageServer = createServer((req, res) => {
  if (req.url === '/hls.min.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(hlsJs);
  } else if (req.url === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
  } else {
    res.writeHead(404).end();
  }
});

// Which kind a fetched URL is: what hls.js said it loaded, else a guess from the URL.
function kindOf(url, kinds) {
  const bare = url.split('#')[0];
  const noQuery = bare.split('?')[0];
  if (kinds[bare]) return kinds[bare];
  const known = Object.entries(kinds).find(([u]) => u.split('?')[0] === noQuery);
  if (known) return known[1];
  if (/\.m3u8$/i.test(noQuery)) return 'playlist';
  if (/init/i.test(noQuery)) return 'init';
  if (/part/i.test(noQuery)) return 'part';
  if (/\.(m4s|mp4|m4v|m4a|ts|aac|cmf[va])$/i.test(noQuery)) return 'segment';
  return 'other';
}

const userDataDir = mkdtempSync(join(tmpdir(), 'popcast-chromium-'));
let browser;
try {
  await new Promise((ok, fail) => pageServer.once('error', fail).listen(0, '127.0.0.1', ok));
  const pageUrl = `http://127.0.0.1:${pageServer.address().port}/`;

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Our flag list, not playwright's defaults; it still needs its pipe and a profile dir.
    ignoreDefaultArgs: true,
    args: [
      ...FLAGS, `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe',
      ...(spki ? [`--ignore-certificate-errors-spki-list=${spki}`] : []),
    ],
    timeout: 20_000,
  });
  // After launch, so this runs after playwright's own exit handler has killed Chromium.
  process.on('exit', () => rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3 }));
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on('console', (m) => process.stderr.write(`browser console.${m.type()}: ${m.text()}\n`));
  page.on('pageerror', (e) => process.stderr.write(`browser page error: ${e.message}\n`));
  if (opts.trace) {
    // Every request the page makes, with when it ended, its status and duration (diagnosis).
    const t0 = Date.now();
    page.on('requestfinished', async (r) => {
      const res = await r.response().catch(() => null);
      log(`trace ${((Date.now() - t0) / 1000).toFixed(3)} ${res ? res.status() : '-'} ${Math.round(r.timing().responseEnd)}ms ${r.url()}`);
    });
  }
  const fetched = [];
  page.on('request', (r) => { if (/^https?:/.test(r.url()) && !r.url().startsWith(pageUrl)) fetched.push(r.url()); });
  page.on('requestfailed', (r) => {
    if (!r.url().startsWith(pageUrl)) log(`request failed: ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().startsWith(pageUrl)) log(`HTTP ${r.status()} for ${r.url()}`);
  });
  // Which protocol each of the stream server's responses came over.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.responseReceived', ({ response }) => {
    if (response.url.startsWith(pageUrl) || !/^https?:/.test(response.url)) return;
    const p = response.protocol ?? 'unknown';
    result.protocols[p] = (result.protocols[p] ?? 0) + 1;
  });

  await page.goto(pageUrl, { timeout: 10_000 });
  const cmcd = opts['cmcd-sid'] ? { sid: opts['cmcd-sid'], cid: opts['cmcd-cid'] } : null;
  await page.evaluate(([u, ll, c, d]) => window.popcast.start(u, ll, c, d), [opts.url, opts['low-latency'], cmcd, opts.trace]);

  // Play for N seconds, ending early on a fatal error.
  const end = Date.now() + seconds * 1000;
  const every = opts['switch-every'] ? Number(opts['switch-every']) * 1000 : 0;
  const plan = every > 0 ? [0, -1, 0] : []; // lowest, highest, lowest
  let playingSince = null;
  // After playback starts: the longest time currentTime stood still (the freezes), and a sample of
  // [ms since the start, currentTime, videoWidth] each second.
  const runStart = Date.now();
  let lastT = null, lastAdvance = null, lastSample = 0;
  result.longestFreezeMs = 0;
  result.progress = [];
  // Each time currentTime stood still over 400 ms and moved again: [ms since start, ms].
  result.freezes = [];
  for (;;) {
    if (plan.length && result.firstPlayingMs !== null) {
      playingSince ??= Date.now();
      const due = playingSince + every * (4 - plan.length);
      if (Date.now() >= due) {
        const level = plan.shift();
        await page.evaluate(([l, how]) => window.popcast.force(l, how), [level, opts['switch-with']]);
      }
    }
    // Kept as we go, so a hard timeout still reports the last state seen.
    const { kinds, ...seen } = await page.evaluate(() => window.popcast.snapshot());
    Object.assign(result, seen);
    if (result.firstPlayingMs !== null) {
      const now = Date.now();
      if (lastT === null || seen.currentTime > lastT + 0.001) {
        if (lastAdvance !== null && now - lastAdvance > 400) result.freezes.push([lastAdvance - runStart, now - lastAdvance]);
        lastT = seen.currentTime;
        lastAdvance = now;
      } else {
        result.longestFreezeMs = Math.max(result.longestFreezeMs, now - lastAdvance);
      }
      if (now - lastSample >= 1000) {
        lastSample = now;
        result.progress.push([now - runStart, Math.round(seen.currentTime * 1000) / 1000, seen.videoWidth]);
      }
    }
    result.requests = {};
    for (const u of fetched) {
      const k = kindOf(u, kinds);
      result.requests[k] = (result.requests[k] ?? 0) + 1;
    }
    if (result.fatalErrors.length || Date.now() >= end) break;
    await new Promise((r) => setTimeout(r, Math.min(250, end - Date.now())));
  }
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot, timeout: 10_000 });

  if (!result.mse?.avc1) log('this Chromium has no H.264 in MSE (avc1.64001f unsupported)');
  finish();
} catch (e) {
  finish(`${e.name}: ${e.message.split('\n')[0]}`);
  log(e.stack ?? String(e));
} finally {
  await browser?.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3 });
  pageServer.close();
  process.exit(process.exitCode ?? 1);
}
