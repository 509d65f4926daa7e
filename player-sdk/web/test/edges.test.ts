// Edge selection: reading /play's answer, failing over in the origin's order, and sending
// requests for any known edge to the serving one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeSet, PlayAnswerError, parsePlay } from '../src/edges';

const answer = {
  event: 'ev',
  region: 'eu-west',
  primary: { node_id: 'eu-1', region: 'eu-west', url: 'http://127.0.0.1:8001/live/ev/master.m3u8?token=T', load: 0.1 },
  fallbacks: [
    { node_id: 'us-1', region: 'us-east', url: 'http://127.0.0.1:8002/live/ev/master.m3u8?token=T', load: 0.2 },
    { node_id: 'ap-1', region: 'ap-south', url: 'https://ap.example/live/ev/master.m3u8?token=T', load: 0.3 },
  ],
};

test('the answer is read in the origin\'s order, with each edge\'s base', () => {
  const edges = parsePlay(answer);
  assert.deepEqual(
    edges.map((e) => [e.node, e.base]),
    [
      ['eu-1', 'http://127.0.0.1:8001'],
      ['us-1', 'http://127.0.0.1:8002'],
      ['ap-1', 'https://ap.example'],
    ],
  );
});

test('broken answers are refused with the problem named', () => {
  const cases: [unknown, RegExp][] = [
    [null, /not an object/],
    [{}, /primary/],
    [{ primary: { node_id: 'a', region: 'r' } }, /url/],
    [{ primary: { node_id: 'a', region: 'r', url: 'not a url' } }, /invalid url/],
    [{ primary: { node_id: 'a', region: 'r', url: 'javascript:alert(1)' } }, /not http/],
    [{ primary: answer.primary, fallbacks: 'x' }, /fallbacks/],
    [{ primary: answer.primary, fallbacks: [{}] }, /fallbacks\[0\]/],
  ];
  for (const [a, why] of cases) {
    assert.throws(() => parsePlay(a), (e: unknown) => e instanceof PlayAnswerError && why.test(e.message));
  }
});

test('a duplicated node is kept once, and a missing load counts as full', () => {
  const edges = parsePlay({
    primary: answer.primary,
    fallbacks: [answer.primary, { node_id: 'x', region: 'r', url: 'http://x.example/' }],
  });
  assert.deepEqual(edges.map((e) => e.node), ['eu-1', 'x']);
  assert.equal(edges[1].load, 1);
});

test('a failed edge hands over to the next, and comes back only after its cooldown', () => {
  const set = new EdgeSet(parsePlay(answer), 10_000);
  assert.equal(set.active.node, 'eu-1');
  assert.equal(set.fail('eu-1', 1000)?.node, 'us-1');
  // A late error from the edge already left changes nothing.
  assert.equal(set.fail('eu-1', 1100), null);
  assert.equal(set.active.node, 'us-1');
  assert.equal(set.fail('us-1', 2000)?.node, 'ap-1');
  // All others failed recently: nowhere to go (the player asks /play again).
  assert.equal(set.fail('ap-1', 3000), null);
  // After the cooldown the first one is usable again.
  const s2 = new EdgeSet(parsePlay(answer), 10_000);
  s2.fail('eu-1', 0);
  s2.fail('us-1', 500);
  assert.equal(s2.active.node, 'ap-1');
  assert.equal(s2.fail('ap-1', 10_001)?.node, 'eu-1');
});

test('requests for any known edge go to the serving one; other URLs are left alone', () => {
  const set = new EdgeSet(parsePlay(answer));
  const part = 'http://127.0.0.1:8001/live/ev/source/p12.m4s?token=T&CMCD=sid%3D%22a%22';
  assert.equal(set.rewrite(part), part);
  set.fail('eu-1', 0);
  assert.equal(set.rewrite(part), 'http://127.0.0.1:8002/live/ev/source/p12.m4s?token=T&CMCD=sid%3D%22a%22');
  assert.equal(set.rewrite('https://cdn.example/x.js'), 'https://cdn.example/x.js');
  assert.equal(set.rewrite('not a url'), 'not a url');
  assert.equal(set.nodeOf(part), 'eu-1');
  assert.equal(set.nodeOf('http://127.0.0.1:8002/x'), 'us-1');
  assert.equal(set.nodeOf('http://elsewhere/'), null);
});

test('a fresh /play list keeps the serving edge when it is still offered and healthy', () => {
  const set = new EdgeSet(parsePlay(answer), 10_000);
  set.fail('eu-1', 0);
  assert.equal(set.replace(parsePlay(answer), 1000), false, 'us-1 still serves');
  assert.equal(set.active.node, 'us-1');
  const withoutUs = { ...answer, fallbacks: [answer.fallbacks[1]] };
  assert.equal(set.replace(parsePlay(withoutUs), 2000), true);
  assert.equal(set.active.node, 'ap-1', 'eu-1 is still cooling down');
  assert.throws(() => new EdgeSet([]), RangeError);
});
