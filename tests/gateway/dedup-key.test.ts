import fc from 'fast-check';
import { dedupKey } from '../../bot/gateway/forwarding/dedup-key.js';

const TYPES = [
  'INTERACTION_CREATE',
  'MESSAGE_CREATE',
  'MESSAGE_DELETE',
  'MESSAGE_UPDATE',
  'GUILD_MEMBER_ADD',
];

describe('the de-duplication key (the BullMQ job id)', () => {
  test('is never refused by BullMQ and is the same for the same event, whatever the payload', () => {
    const payload = fc.oneof(
      fc.jsonValue(),
      fc.record({ id: fc.string(), edited_timestamp: fc.string(), content: fc.string() }),
      fc.record({
        id: fc.bigInt({ min: 0n, max: 2n ** 63n }).map(String),
        edited_timestamp: fc.date().map((t) => t.toISOString()),
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...TYPES), payload, (type, d) => {
        const key = dedupKey(type, d);
        expect(key).not.toContain(':'); // BullMQ: "Custom Id cannot contain :"
        expect(key).not.toMatch(/^\d+$/); // nor an integer
        expect(key.startsWith(`${type}-`)).toBe(true);
        expect(dedupKey(type, structuredClone(d))).toBe(key);
      }),
      { numRuns: 500 },
    );
  });

  test('messages are keyed by id (edits by id and edit time); other events by content', () => {
    expect(dedupKey('MESSAGE_CREATE', { id: '123', content: 'a' })).toBe('MESSAGE_CREATE-123');
    expect(dedupKey('MESSAGE_CREATE', { id: '123', content: 'b' })).toBe('MESSAGE_CREATE-123');
    const edit = (t: string) => dedupKey('MESSAGE_UPDATE', { id: '9', edited_timestamp: t });
    expect(edit('2024-05-01T12:00:00.000000+00:00')).toBe(edit('2024-05-01T12:00:00.000000+00:00'));
    expect(edit('2024-05-01T12:00:00.000000+00:00')).not.toBe(edit('2024-05-01T12:00:09.500000+00:00'));
    // An id that is not a snowflake cannot shape the key: it falls back to the content hash.
    expect(dedupKey('MESSAGE_CREATE', { id: 'a:b' })).toMatch(/^MESSAGE_CREATE-[\w-]{27}$/);
    const member = (nick: string) =>
      dedupKey('GUILD_MEMBER_UPDATE', { guild_id: '1', user: { id: '2' }, nick });
    expect(member('x')).toBe(member('x'));
    expect(member('x')).not.toBe(member('y'));
  });
});
