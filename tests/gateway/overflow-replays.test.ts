// The bookkeeping behind a full forwarder buffer (overflow-replays.ts), on its own: which
// dispatches are refused, skipped or accepted, where a shard may resume from, and what is lost.
import { OverflowReplays, type LostDispatches } from '../../bot/gateway/forwarding/overflow-replays.js';

function setup() {
  const lost: LostDispatches[] = [];
  return { replays: new OverflowReplays((l) => lost.push(l)), lost };
}

test('a refused shard refuses until it reconnects, resumes from before its first refusal, and skips what it already took', () => {
  const { replays, lost } = setup();
  expect(replays.admit(0, 'MESSAGE_CREATE', 10, 's', false)).toBe('accept');
  expect(replays.admit(0, 'MESSAGE_CREATE', 11, 's', true)).toBe('refuse');
  expect(replays.admit(0, 'MESSAGE_CREATE', 12, 's', false)).toBe('refuse'); // room, but behind 11
  expect(replays.admit(1, 'MESSAGE_CREATE', 5, 's1', false)).toBe('accept'); // other shards go on
  expect(replays.resumeBound(0)).toBe(10);
  expect(replays.resumeBound(1)).toBe(Infinity);
  expect(replays.takeResumes()).toEqual([0]);
  expect(replays.takeResumes()).toEqual([]); // asked once
  replays.connected(0);
  expect(replays.admit(0, 'MESSAGE_CREATE', 9, 's', false)).toBe('skip');
  expect(replays.admit(0, 'MESSAGE_CREATE', 10, 's', false)).toBe('skip');
  expect(replays.admit(0, 'MESSAGE_CREATE', 11, 's', false)).toBe('accept');
  expect(replays.admit(0, 'MESSAGE_CREATE', 12, 's', false)).toBe('accept');
  expect(replays.size).toBe(0);
  expect(lost).toEqual([]);
});

test('a replay refused again waits for room and resumes again from the same place; each sequence counts once', () => {
  const { replays, lost } = setup();
  replays.admit(0, 'MESSAGE_CREATE', 11, 's', true);
  replays.admit(0, 'MESSAGE_UPDATE', 12, 's', false);
  replays.takeResumes();
  replays.connected(0);
  expect(replays.admit(0, 'MESSAGE_CREATE', 11, 's', true)).toBe('refuse');
  expect(replays.admit(0, 'MESSAGE_UPDATE', 12, 's', false)).toBe('refuse'); // behind 11 again
  expect(replays.admit(0, 'MESSAGE_CREATE', 13, 's', false)).toBe('refuse');
  expect(replays.resumeBound(0)).toBe(10);
  expect(replays.takeResumes()).toEqual([0]);
  // The session is gone after all: 11, 12 and 13 are lost, each counted once.
  replays.connected(0);
  expect(replays.admit(0, 'READY', 1, 'new', false)).toBe('accept');
  expect(lost).toEqual([
    {
      shardId: 0,
      sessionId: 's',
      firstRefused: 11,
      byType: new Map([
        ['MESSAGE_CREATE', 2],
        ['MESSAGE_UPDATE', 1],
      ]),
      reason: 'session_not_resumed',
    },
  ]);
});

test('a replay that begins after the first refused dispatch reports the gap', () => {
  const { replays, lost } = setup();
  replays.admit(2, 'MESSAGE_CREATE', 50, 's', true);
  replays.connected(2);
  expect(replays.admit(2, 'MESSAGE_CREATE', 53, 's', false)).toBe('accept');
  // The sequences skipped, of whatever type they were.
  expect(lost.map((l) => [l.reason, l.firstRefused, [...l.byType]])).toEqual([
    ['replay_gap', 50, [['unknown', 3]]],
  ]);
});

test("a session replaced or cleared before the shard's next dispatch: the refusals are lost at once, and no longer bound the new session", () => {
  const { replays, lost } = setup();
  replays.admit(0, 'MESSAGE_CREATE', 50, 's', true);
  replays.admit(1, 'MESSAGE_CREATE', 70, 't', true);
  replays.session(0, 's'); // the same session: nothing
  expect(replays.resumeBound(0)).toBe(49);
  replays.session(0, 'new'); // READY of a new session
  replays.session(1, undefined); // cleared (@discordjs/ws identifies next)
  expect(replays.resumeBound(0)).toBe(Infinity);
  expect(replays.resumeBound(1)).toBe(Infinity);
  expect(lost.map((l) => [l.shardId, l.reason, [...l.byType]])).toEqual([
    [0, 'session_not_resumed', [['MESSAGE_CREATE', 1]]],
    [1, 'session_not_resumed', [['MESSAGE_CREATE', 1]]],
  ]);
});

test('a resume that could not be asked is asked again', () => {
  const { replays } = setup();
  replays.admit(0, 'MESSAGE_CREATE', 5, 's', true);
  expect(replays.takeResumes()).toEqual([0]);
  replays.resumeFailed(0);
  expect(replays.takeResumes()).toEqual([0]);
});
