import fc from 'fast-check';
import { dedupKey } from '../../bot/gateway/forwarding/dedup-key.js';

const TYPES = [
  'INTERACTION_CREATE',
  'MESSAGE_CREATE',
  'MESSAGE_DELETE',
  'MESSAGE_UPDATE',
  'MESSAGE_REACTION_ADD',
];

describe('the de-duplication key (the BullMQ job id)', () => {
  test('is never refused by BullMQ and is the same for the same dispatch, whatever the payload', () => {
    const payload = fc.oneof(
      fc.jsonValue(),
      fc.record({ id: fc.string(), edited_timestamp: fc.string(), content: fc.string() }),
      fc.record({ id: fc.bigInt({ min: 0n, max: 2n ** 63n }).map(String), content: fc.string() }),
    );
    const position = fc.option(
      fc.record({ sessionId: fc.option(fc.string(), { nil: undefined }), seq: fc.nat() }),
      {
        nil: undefined,
      },
    );
    fc.assert(
      fc.property(fc.constantFrom(...TYPES), payload, position, (type, d, at) => {
        const key = dedupKey(type, d, at);
        expect(key).not.toContain(':'); // BullMQ: "Custom Id cannot contain :"
        expect(key).not.toMatch(/^\d+$/); // nor an integer
        expect(key.startsWith(`${type}-`)).toBe(true);
        expect(dedupKey(type, structuredClone(d), at && { ...at })).toBe(key);
      }),
      { numRuns: 500 },
    );
  });

  test('created and deleted messages and interactions are keyed by their id, whichever session delivered them', () => {
    const a = { sessionId: 'aaaa', seq: 5 };
    const b = { sessionId: 'bbbb', seq: 912 };
    expect(dedupKey('MESSAGE_CREATE', { id: '123', content: 'a' }, a)).toBe('MESSAGE_CREATE-123');
    expect(dedupKey('MESSAGE_CREATE', { id: '123', content: 'a' }, b)).toBe('MESSAGE_CREATE-123');
    expect(dedupKey('INTERACTION_CREATE', { id: '77' }, b)).toBe('INTERACTION_CREATE-77');
  });

  test('other events are keyed by session and sequence: a replay matches, a genuine repeat does not', () => {
    const reaction = { user_id: '2', message_id: '3', emoji: { name: '👍' } };
    const first = dedupKey('MESSAGE_REACTION_ADD', reaction, { sessionId: 'abc123', seq: 10 });
    expect(dedupKey('MESSAGE_REACTION_ADD', { ...reaction }, { sessionId: 'abc123', seq: 10 })).toBe(first); // RESUME replay
    expect(dedupKey('MESSAGE_REACTION_ADD', reaction, { sessionId: 'abc123', seq: 14 })).not.toBe(first); // added again
    // Message updates too: an embed unfurl and a pin of a never-edited message are two events.
    expect(dedupKey('MESSAGE_UPDATE', { id: '9' }, { sessionId: 'abc123', seq: 20 })).not.toBe(
      dedupKey('MESSAGE_UPDATE', { id: '9' }, { sessionId: 'abc123', seq: 21 }),
    );
    // A session id that is not a plain token cannot shape the key: content is used instead.
    expect(dedupKey('MESSAGE_REACTION_ADD', reaction, { sessionId: 'a:b', seq: 1 })).toMatch(
      /^MESSAGE_REACTION_ADD-[\w-]{27}$/,
    );
    expect(dedupKey('MESSAGE_CREATE', { id: 'a:b' })).toMatch(/^MESSAGE_CREATE-[\w-]{27}$/);
  });
});
