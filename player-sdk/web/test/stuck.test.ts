// The stuck-buffer watch: it skips only when the buffer's end stands still, little is left
// ahead and newer media exists; never in normal live playback or while waiting at the edge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StuckWatch, stuckConfig } from '../src/stuck';

/** Normal live playback: a part (0.2 s) lands every 200 ms and the edge moves with it. */
test('normal live playback never skips', () => {
  const w = new StuckWatch();
  let end = 10;
  for (let ms = 0; ms <= 60_000; ms += 250) {
    end = 10 + Math.floor(ms / 200) * 0.2;
    const playhead = end - 0.7;
    assert.equal(w.update(end, end - playhead, end + 0.1, ms), null, `at ${ms} ms`);
  }
  assert.equal(w.skips, 0);
});

test('waiting at the live edge (no newer media) never skips', () => {
  const w = new StuckWatch();
  for (let ms = 0; ms <= 10_000; ms += 250) {
    assert.equal(w.update(16, 0.05, 16.1, ms), null);
  }
});

test('a buffer end stuck 1 µs short of a boundary while the edge moves on is skipped once', () => {
  const w = new StuckWatch();
  const end = 15.999999;
  const seeks: number[] = [];
  for (let ms = 0; ms <= 2000; ms += 250) {
    const edge = 16 + ms / 1000;
    const ahead = Math.max(0, 0.6 - ms / 1000);
    const s = w.update(end, ahead, edge, ms);
    if (s !== null) seeks.push(s);
  }
  assert.equal(seeks.length, 1);
  assert.ok(Math.abs(seeks[0] - (end + stuckConfig().skip)) < 1e-9);
  assert.equal(w.skips, 1);
});

test('plenty buffered ahead: no skip even if the end stands still', () => {
  const w = new StuckWatch();
  for (let ms = 0; ms <= 5000; ms += 250) {
    assert.equal(w.update(20, 2.0, 25, ms), null);
  }
});

test('after a skip it waits out the cooldown, and a moving end restarts the clock', () => {
  const w = new StuckWatch(stuckConfig({ cooldownMs: 3000 }));
  assert.equal(w.update(16, 0.1, 18, 0), null);
  assert.notEqual(w.update(16, 0.1, 18, 600), null);
  assert.equal(w.update(16, 0.1, 18, 1500), null, 'cooldown');
  assert.equal(w.update(16.2, 0.1, 18, 1600), null, 'the end moved');
  assert.equal(w.update(16.2, 0.1, 18, 2000), null, 'not stuck long enough yet');
  assert.notEqual(w.update(16.2, 0.1, 18, 3700), null, 'stuck again past the cooldown');
  w.reset();
  assert.equal(w.update(16.2, 0.1, 18, 9000), null, 'reset forgets the end');
});
