#!/usr/bin/env node
// Drives Popcast's creator publish page (/publish/{event}) in headless Chromium with a fake
// camera and microphone, as a creator would: the key in the field, "Go live", then "Stop"
// after N seconds. Prints ONE line of JSON: the states the page went through, when it
// connected, what it sent (frames, picture size) and any error it showed.
//
//   --url URL        the publish page (a #key=… fragment fills the key field)
//   --seconds N      stay live N seconds, then press Stop (exit 0 when the page stayed
//                    connected throughout and sent frames)
//   --expect-error S instead, expect the page to show an error containing S (exit 0 if so)
//   --quality WxH    pick this size in the page's quality menu (default: the page's, 720p)
//
// Chromium gathers no ICE candidates on the loopback interface: run this inside a network
// namespace with a veth pair (shared/TESTING-CLIENTS.md); the test does. Everything stops
// by itself: the run is cut at N + 60 s. Exit 1 on failure, 2 on a usage error.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

let opts;
try {
  opts = parseArgs({ options: { url: { type: 'string' }, seconds: { type: 'string' }, 'expect-error': { type: 'string' }, quality: { type: 'string' } } }).values;
} catch (e) {
  console.error(e.message);
  process.exit(2);
}
if (!opts.url || (!opts.seconds && !opts['expect-error'])) {
  console.error('usage: publish.mjs --url URL (--seconds N | --expect-error TEXT)');
  process.exit(2);
}
const seconds = Number(opts.seconds || 0);
setTimeout(() => { console.log(JSON.stringify({ ok: false, error: 'harness timeout' })); process.exit(1); }, (seconds + 60) * 1000).unref();

const profile = mkdtempSync(join(tmpdir(), 'popcast-publish-'));
const browser = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', args: FLAGS, headless: true });
const result = { ok: false, states: [], console: [] };
try {
  const page = browser.pages()[0] || await browser.newPage();
  page.on('console', (m) => { if (result.console.length < 20) result.console.push(m.text()); });
  await page.goto(opts.url);
  if (opts.quality) await page.selectOption('#quality', opts.quality);
  await page.click('#go');
  const started = Date.now();
  const state = () => page.evaluate(() => ({ ...window.popcastPublish }));
  let s = await state();
  while (Date.now() - started < 30000) {
    s = await state();
    if (result.states.at(-1) !== s.state) result.states.push(s.state);
    if (s.state === 'connected' || s.state === 'failed') break;
    await page.waitForTimeout(100);
  }
  if (opts['expect-error']) {
    const shown = await page.textContent('#error');
    result.error = shown;
    result.ok = s.state === 'failed' && shown.includes(opts['expect-error']);
  } else if (s.state !== 'connected') {
    result.error = s.error || `state ${s.state} after 30 s`;
  } else {
    result.connected_ms = Date.now() - started;
    const until = Date.now() + seconds * 1000;
    let steady = true;
    while (Date.now() < until) {
      await page.waitForTimeout(500);
      s = await state();
      if (result.states.at(-1) !== s.state) result.states.push(s.state);
      if (s.state !== 'connected') steady = false;
      (result.samples ||= []).push([s.fps, s.limitedBy, s.availableKbps]);
    }
    result.frames_sent = s.framesSent;
    // What the origin said it receives (the page polls the session's report).
    const v = s.report && s.report.report && s.report.report.video;
    result.received = v ? { receiving: s.report.receiving, size: `${v.width}x${v.height}`, fps: v.fps_measured, codec: v.codec } : null;
    result.shown = await page.textContent('#received');
    result.fps = Math.round((s.framesSent / (Date.now() - started)) * 10000) / 10;
    result.size = `${s.width}x${s.height}`;
    await page.click('#stop');
    await page.waitForTimeout(500);
    s = await state();
    result.states.push(s.state);
    result.ok = steady && s.framesSent > seconds * 10;
    if (!steady) result.error = 'the connection did not stay up';
  }
} catch (e) {
  result.error = String(e);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
