// Session accounting and the beacons built from it (the edge's /qoe contract, version 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QoeSession, Samples } from '../src/qoe';

test('startup, stalls and watching become running totals in the beacons', () => {
  const s = new QoeSession('ev', 'sid-1', 1000);
  assert.equal(s.beacon(1500, false), null, 'nothing to say before the first frame');
  s.firstFrame(1800);
  assert.equal(s.startup, 800);
  s.stallStart(5000);
  s.stallStart(5100); // still the same stall
  assert.equal(s.stallEnd(5600), 600);
  s.latency(0.92);
  const b1 = s.beacon(6800, false)!;
  assert.deepEqual(
    { ...b1, latency_ms: b1.latency_ms },
    {
      v: 1, event: 'ev', sid: 'sid-1', seq: 1, startup_ms: 800, watch_ms: 5000, stalls: 1, stall_ms: 600,
      stall_events: [{ at_ms: 3200, dur_ms: 600 }], latency_ms: [920], errors: [], ended: false,
    },
  );
  // Lists go out once; totals keep running; an ongoing stall counts up to now.
  s.stallStart(8000);
  const b2 = s.beacon(8500, true)!;
  assert.equal(b2.seq, 2);
  assert.deepEqual(b2.stall_events, []);
  assert.deepEqual(b2.latency_ms, []);
  assert.equal(b2.stalls, 2);
  assert.equal(b2.stall_ms, 1100);
  assert.equal(b2.watch_ms, 6700);
  assert.equal(b2.ended, true);
});

test('after a failover the next edge gets a leg counted from the switch, without startup', () => {
  const s = new QoeSession('ev', 'sid-2', 0);
  s.firstFrame(1000);
  s.stallStart(2000);
  s.stallEnd(2500);
  s.beacon(30_000, false);
  s.stallStart(40_000);
  s.newLeg(41_000);
  s.stallEnd(42_000);
  const b = s.beacon(50_000, false)!;
  assert.equal(b.startup_ms, undefined);
  assert.equal(b.seq, 1);
  assert.equal(b.watch_ms, 9000, 'watching on this edge only');
  assert.equal(b.stalls, 1, 'the stall under way at the switch');
  assert.equal(b.stall_ms, 1000, 'its part on this edge');
  assert.deepEqual(b.stall_events, [{ at_ms: 0, dur_ms: 1000 }]);
  assert.equal(s.stalls, 2, 'the whole session still knows both');
  assert.equal(s.stallMs, 2500);
});

test('lists are bounded and values clamped to what an edge believes', () => {
  const s = new QoeSession('ev', 'sid-3', 0);
  s.firstFrame(10);
  for (let i = 0; i < 100; i++) s.latency(i);
  s.latency(-1);
  s.latency(NaN);
  s.latency(10_000);
  for (let i = 0; i < 100; i++) s.error('x'.repeat(100), false);
  const b = s.beacon(1000, false)!;
  assert.equal(b.latency_ms.length, 32);
  assert.equal(b.latency_ms[b.latency_ms.length - 1], 600_000);
  assert.equal(b.errors.length, 32);
  assert.equal(b.errors[0].code.length, 64);
  assert.ok(JSON.stringify(b).length < 16 * 1024, 'under the edge\'s size limit');
});

test('percentiles by nearest rank', () => {
  const p = new Samples(100);
  assert.equal(p.percentile(50), null);
  for (let i = 1; i <= 200; i++) p.push(i);
  assert.equal(p.length, 100);
  assert.equal(p.percentile(50), 150);
  assert.equal(p.percentile(95), 195);
  assert.equal(p.percentile(100), 200);
});
