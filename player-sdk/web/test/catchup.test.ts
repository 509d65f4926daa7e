// The catch-up controller against a simulated player: latency grows by (1 - rate) per second
// of wall time, plus measurement noise, as it does in a browser holding a live stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Catchup, catchupConfig } from '../src/catchup';

/** A deterministic noise source (xorshift), so that runs repeat. */
function noise(seed: number) {
  let s = seed >>> 0 || 1;
  return (amp: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 0xffffffff - 0.5) * 2 * amp;
  };
}

interface Run {
  latency: number[];
  rates: number[];
  jumps: number;
}

/** `seconds` of playback from `start` latency, a tick every 250 ms. */
function simulate(c: Catchup, start: number, seconds: number, opts: { jitter?: number; buffer?: number } = {}): Run {
  const rnd = noise(7);
  let latency = start;
  const out: Run = { latency: [], rates: [], jumps: 0 };
  let rate = 1;
  for (let ms = 0; ms <= seconds * 1000; ms += 250) {
    latency += (1 - rate) * 0.25;
    const d = c.update(latency + rnd(opts.jitter ?? 0), opts.buffer ?? 2, ms);
    if (d.jump) {
      out.jumps++;
      latency = c.config.target;
    }
    rate = d.rate;
    out.latency.push(latency);
    out.rates.push(rate);
  }
  return out;
}

/** How often the correction changed direction (speeding up ↔ slowing down). */
function reversals(rates: number[]): number {
  let last = 0;
  let n = 0;
  for (const r of rates) {
    const sign = Math.sign(Math.round((r - 1) * 100));
    if (sign !== 0 && last !== 0 && sign !== last) n++;
    if (sign !== 0) last = sign;
  }
  return n;
}

test('a viewer 1.5 s behind reaches the target within 15 s and stays, without overshooting', () => {
  const c = new Catchup(catchupConfig(1.0));
  const run = simulate(c, 2.5, 40, { jitter: 0.05 });
  const at15 = run.latency[15 * 4];
  assert.ok(Math.abs(at15 - 1.0) < 0.3, `latency after 15 s: ${at15}`);
  const after = run.latency.slice(15 * 4);
  assert.ok(after.every((l) => Math.abs(l - 1.0) < 0.35), `held: ${Math.min(...after)}..${Math.max(...after)}`);
  assert.equal(reversals(run.rates), 0, 'no overshoot: it never slows down after speeding up');
  assert.ok(Math.max(...run.rates) <= 1.1 && Math.min(...run.rates) >= 0.92, 'rates stay within bounds');
});

test('a viewer ahead of the target slows down gently and stops at it', () => {
  const c = new Catchup(catchupConfig(1.5));
  const run = simulate(c, 0.9, 30);
  assert.ok(Math.min(...run.rates) >= 0.92, 'never slower than minRate');
  assert.ok(run.rates.some((r) => r < 1), 'it slowed down');
  assert.ok(Math.abs(run.latency[run.latency.length - 1] - 1.5) < 0.25);
  assert.equal(reversals(run.rates), 0);
});

test('near the target, measurement jitter leaves the rate at 1 (no oscillation)', () => {
  const c = new Catchup(catchupConfig(1.0));
  const run = simulate(c, 1.05, 120, { jitter: 0.15 });
  const changed = run.rates.filter((r) => r !== 1).length;
  assert.ok(changed <= run.rates.length * 0.05, `${changed} of ${run.rates.length} ticks off rate 1`);
  assert.ok(reversals(run.rates) <= 1, `reversals: ${reversals(run.rates)}`);
});

test('it never speeds up with too little buffered', () => {
  const c = new Catchup(catchupConfig(1.0));
  const run = simulate(c, 3.0, 10, { buffer: 0.2 });
  assert.ok(run.rates.every((r) => r <= 1), 'rate never above 1 with 0.2 s buffered');
});

test('far behind, it jumps to live instead of speeding up for a minute', () => {
  const c = new Catchup(catchupConfig(1.0));
  const run = simulate(c, 8, 5);
  assert.equal(run.jumps, 1);
  assert.ok(Math.abs(run.latency[run.latency.length - 1] - 1.0) < 0.3);
});

test('rates are whole hundredths, and garbage readings change nothing', () => {
  const c = new Catchup(catchupConfig(1.0));
  for (let i = 0; i < 40; i++) {
    const d = c.update(1.7, 3, i * 250);
    assert.equal(Math.round(d.rate * 100) / 100, d.rate);
  }
  assert.deepEqual(c.update(NaN, 3, 10_000).rate, 1);
  assert.throws(() => new Catchup(catchupConfig(0)), RangeError);
  assert.throws(() => new Catchup(catchupConfig(1, { settle: 0.5, engage: 0.2 })), RangeError);
});
