// The receive path's frame reader (pure): a frame read in one pass says what JSON.parse says of
// it (envelope, `d`, the fields the forwarder reads), or declines and JSON.parse reads it; and a
// `d` kept as text is written to Redis, keyed and partitioned exactly as the parsed one would be.
import { dedupKey } from '../../bot/gateway/forwarding/dedup-key.js';
import { dispatchesJson } from '../../bot/gateway/forwarding/job-batches.js';
import { readFrame, RawPayload } from '../../bot/gateway/receiving/dispatch-frame.js';
import { eventPartitionOf, type BatchedDispatch } from '../../bot/queues/queue-names.js';

const message = {
  id: '1190000000000000001',
  channel_id: '1190000000000000002',
  guild_id: '1190000000000000003',
  content: 'a "quoted" \\ back\\slash, a brace } and ] and unicode: ünïcødé 🎲 \u2028',
  author: { id: '1190000000000000004', username: 'x', flags: 0, bot: false, avatar: null },
  mentions: [{ id: '5' }, [], {}],
  embeds: [],
  tts: false,
  nonce: -12.5e3,
};

/** What the reader must agree with. */
function parsed(text: string) {
  const f = JSON.parse(text) as { op: number; t?: string | null; s?: number | null; d?: unknown };
  const d = f.d as Record<string, unknown> | null | undefined;
  const field = (k: string) => (d && typeof d === 'object' && typeof d[k] === 'string' ? d[k] : undefined);
  return {
    op: f.op,
    t: f.t ?? null,
    s: f.s ?? null,
    d,
    id: field('id'),
    guild_id: field('guild_id'),
    channel_id: field('channel_id'),
  };
}

function expectAgrees(text: string) {
  const frame = readFrame(text);
  expect(frame).toBeDefined();
  const want = parsed(text);
  expect({ op: frame!.op, t: frame!.t, s: frame!.s }).toEqual({ op: want.op, t: want.t, s: want.s });
  if (want.d === null || want.d === undefined) return expect(frame!.d).toBe(want.d);
  expect(frame!.d).toBeInstanceOf(RawPayload);
  expect(JSON.parse(frame!.d!.json)).toEqual(want.d);
  expect({ id: frame!.d!.id, guild_id: frame!.d!.guild_id, channel_id: frame!.d!.channel_id }).toEqual({
    id: want.id,
    guild_id: want.guild_id,
    channel_id: want.channel_id,
  });
}

describe('a frame read in one pass', () => {
  test("Discord's order (t, s, op, d) and the simulator's (op, s, t, d) and d not last", () => {
    expectAgrees(JSON.stringify({ t: 'MESSAGE_CREATE', s: 42, op: 0, d: message }));
    expectAgrees(`{"op":0,"s":7,"t":"MESSAGE_CREATE","d":${JSON.stringify(message)}}`);
    expectAgrees(JSON.stringify({ d: message, op: 0, t: 'MESSAGE_CREATE', s: 9007199254740991 }));
    expect(readFrame(JSON.stringify({ t: 'X', s: 1, op: 0, d: message }))!.d!.json).toBe(
      JSON.stringify(message),
    );
  });

  test('control frames, null and missing d, d not an object', () => {
    expectAgrees('{"op":11,"d":null,"s":null,"t":null}');
    expectAgrees('{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}');
    expectAgrees('{"op":9,"d":false,"s":null,"t":null}');
    expectAgrees('{"op":0,"s":3,"t":"RESUMED","d":{}}');
    expectAgrees('{"op":1,"s":null}');
    expectAgrees('{"op":0,"s":4,"t":"X","d":[1,"2",{"id":"3"}]}');
    expectAgrees('{"op":0,"s":4,"t":"X","d":"text"}');
  });

  test('the fields read are top-level strings of d only, the last of a repeated key', () => {
    expectAgrees('{"op":0,"s":1,"t":"X","d":{"author":{"id":"9","guild_id":"8"},"channel_id":null}}');
    expectAgrees('{"op":0,"s":1,"t":"X","d":{"id":"1","id":"2","guild_id":"3","guild_id":5}}');
    expectAgrees('{"op":0,"s":1,"t":"X","d":{"ids":"1","i":"2","guild":"3","channel_id":"4"}}');
  });

  test('what it does not read is left to JSON.parse: whitespace, escapes in keys and ids', () => {
    for (const text of [
      '{ "op":0,"s":1,"t":"X","d":{}}',
      '{"op":0, "s":1,"t":"X","d":{}}',
      '{"op":0,"s":1,"t":"X","d":{"a": 1}}',
      '{"op":0,"s":1,"t":"X","d":{"a":[1, 2]}}',
      '{"o\\u0070":0,"s":1,"t":"X","d":{}}',
      '{"op":0,"s":1,"t":"X","d":{"gu\\u0069ld_id":"1"}}',
      '{"op":0,"s":1,"t":"X","d":{"id":"1\\u0030"}}',
      '{"op":0,"s":1,"t":"X\\"Y","d":{}}',
      '{"op":0,"s":1.5,"t":"X","d":{}}',
      '{"s":1,"t":"X","d":{}}',
      '[0]',
    ])
      expect(readFrame(text)).toBeUndefined();
  });

  test('a broken frame is not read: unclosed strings, unmatched brackets, trailing text', () => {
    for (const text of [
      '{"op":0,"s":1,"t":"X","d":{"a":"b}}',
      '{"op":0,"s":1,"t":"X","d":{"a":[1}}',
      '{"op":0,"s":1,"t":"X","d":{"a":{"b":1]}}',
      '{"op":0,"s":1,"t":"X","d":{}}x',
      '{"op":0,"s":1,"t":"X","d":{}',
      '{"op":0,"s":1,"t":"X","d":{"a":1}}}',
      '{"op":0,"s":1,"t":"X","d":{"a":@}}',
      '{"op":0,"s":1,"t":"X","d":}',
      '{"op":0,"s":1,"t":"X","d":{"a":"\\"}}',
      '',
    ])
      expect(readFrame(text)).toBeUndefined();
  });

  test('what JSON.parse refuses is not read either: bad scalars, escapes, control characters', () => {
    for (const bad of [
      '{"op":0x0,"s":1,"t":"X","d":{}}',
      '{"op":0,"s":+1,"t":"X","d":{}}',
      '{"op":0,"s":01,"t":"X","d":{}}',
      '{"op":0,"s":1,"t":"X","d":tru}',
      '{"op":0,"s":1,"t":"X","d":{"a":nul}}',
      '{"op":0,"s":1,"t":"X","d":{"a":[1,,2]}}',
      '{"op":0,"s":1,"t":"X","d":{"a":{"b"}}}',
      '{"op":0,"s":1,"t":"X","d":{"a":1.}}',
      '{"op":0,"s":1,"t":"X","d":{"a":.5}}',
      '{"op":0,"s":1,"t":"X","d":{"a":1e}}',
      '{"op":0,"s":1,"t":"X","d":{"a":-}}',
      '{"op":0,"s":1,"t":"X","d":{"a":[1,]}}',
      '{"op":0,"s":1,"t":"X","d":{"a":1,}}',
      '{"op":0,"s":1,"t":"X","d":{"a":"\\x"}}',
      '{"op":0,"s":1,"t":"X","d":{"a":"\\u12g4"}}',
      '{"op":0,"s":1,"t":"X","d":{"id":"1\n"}}',
      '{"op":0,"s":1,"t":"X","d":{"a":"tab\there"}}',
    ]) {
      expect(() => JSON.parse(bad)).toThrow();
      expect(readFrame(bad)).toBeUndefined();
    }
  });

  test("JSON's numbers, literals and escapes inside d are read; no d is as JSON.parse says (undefined)", () => {
    expectAgrees(
      '{"op":0,"s":1,"t":"X","d":{"a":[0,-0,1.5,-0.5E+2,1e3,2E-7,true,false,null],"b":"\\u00e9\\n\\/\\\\"}}',
    );
    expectAgrees('{"op":0,"s":1e0,"t":"X","d":{}}');
    expectAgrees('{"op":0,"s":5,"t":"X"}');
    expect(readFrame('{"op":0,"s":5,"t":"X"}')!.d).toBeUndefined();
  });

  test('nesting deeper than the reader goes is left to JSON.parse', () => {
    const deep = (n: number) => `{"op":0,"s":1,"t":"X","d":{"a":${'['.repeat(n)}${']'.repeat(n)}}}`;
    expectAgrees(deep(40));
    expect(readFrame(deep(200))).toBeUndefined();
  });

  test('random payloads: read as JSON.parse reads them', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const chars = ['a', '"', '\\', '{', '}', '[', ']', ',', ':', ' ', 'é', '😀', '\n', '\u0000'];
    const str = () => Array.from({ length: rand(6) }, () => chars[rand(chars.length)]).join('');
    const key = () => ['id', 'guild_id', 'channel_id', 'k', 'type', 'name'][rand(6)]!;
    const value = (depth: number): unknown => {
      switch (rand(depth > 3 ? 4 : 6)) {
        case 0:
          return str();
        case 1:
          return rand(3) === 0 ? null : rand(2) === 0;
        case 2:
          return (rand(2000) - 1000) / (rand(3) + 1);
        case 3:
          return String(rand(1e9));
        case 4:
          return Array.from({ length: rand(4) }, () => value(depth + 1));
        default:
          return Object.fromEntries(Array.from({ length: rand(5) }, () => [key(), value(depth + 1)]));
      }
    };
    let read = 0;
    for (let i = 0; i < 2_000; i++) {
      const d = Object.fromEntries(Array.from({ length: rand(6) }, () => [key(), value(1)]));
      const text = JSON.stringify({ t: 'T', s: i, op: 0, d });
      // An id with an escape in its JSON is declined (ids are digits); nothing else may be.
      const escapedId = ['id', 'guild_id', 'channel_id'].some(
        (k) => typeof d[k] === 'string' && JSON.stringify(d[k]).includes('\\'),
      );
      if (escapedId && readFrame(text) === undefined) continue;
      expectAgrees(text);
      read++;
    }
    expect(read).toBeGreaterThan(1_500);
  });
});

describe('a d kept as text, forwarded', () => {
  const text = JSON.stringify({ t: 'MESSAGE_CREATE', s: 42, op: 0, d: message });
  const raw = readFrame(text)!.d!;
  const asParsed = (JSON.parse(text) as { d: unknown }).d;
  const dispatch = (d: unknown): BatchedDispatch => ({
    t: 'MESSAGE_CREATE',
    d,
    shardId: 3,
    seq: 42,
    receivedAt: 1_700_000_000_000,
    generation: 2,
    key: 'k',
  });

  test("a batch's body is the JSON of the parsed dispatches", () => {
    const batch = [
      dispatch(raw),
      dispatch(asParsed),
      dispatch(readFrame('{"op":0,"s":1,"t":"X","d":{}}')!.d),
    ];
    const want = [dispatch(asParsed), dispatch(asParsed), dispatch({})];
    expect(JSON.parse(dispatchesJson(batch))).toEqual(want);
    expect(dispatchesJson([])).toBe('[]');
    const others = ['{"op":0,"s":1,"t":"X","d":"text"}', '{"op":0,"s":1,"t":"X","d":[1,{"a":2}]}'].map(
      (f) => readFrame(f)!.d,
    );
    expect(JSON.parse(dispatchesJson([dispatch(others[0]), dispatch(others[1]), dispatch(null)]))).toEqual([
      dispatch('text'),
      dispatch([1, { a: 2 }]),
      dispatch(null),
    ]);
  });

  test('serialized whole (an inline job), it is the parsed payload', () => {
    expect(JSON.stringify(dispatch(raw))).toBe(JSON.stringify(dispatch(asParsed)));
  });

  test('the same de-duplication key and partition as the parsed payload, on every path', () => {
    for (const t of ['MESSAGE_CREATE', 'MESSAGE_REACTION_ADD', 'GUILD_CREATE', 'TYPING_START']) {
      expect(dedupKey(t, raw, { sessionId: 'abc', seq: 42 })).toBe(
        dedupKey(t, asParsed, { sessionId: 'abc', seq: 42 }),
      );
      expect(dedupKey(t, raw)).toBe(dedupKey(t, asParsed));
      for (const count of [2, 3, 16])
        expect(eventPartitionOf({ t, d: raw }, count)).toBe(eventPartitionOf({ t, d: asParsed }, count));
    }
    const dm = readFrame('{"op":0,"s":1,"t":"TYPING_START","d":{"channel_id":"77","user_id":"5"}}')!.d;
    expect(eventPartitionOf({ t: 'TYPING_START', d: dm }, 7)).toBe(
      eventPartitionOf({ t: 'TYPING_START', d: { channel_id: '77', user_id: '5' } }, 7),
    );
  });
});
