// Event partitions (pure): which partition a dispatch goes to, the keys of each partition, and
// the high-water key. How the forwarder batches each partition is in dispatch-forwarder.test.ts;
// the end-to-end run on a real Redis Cluster in tests/redis-cluster/redis-cluster.test.ts.
import {
  ALL_QUEUES,
  botKey,
  botQueues,
  EVENT_PARTITIONS,
  eventPartitionOf,
  eventPartitionPrefix,
  eventPartitionPrefixes,
  forwardedQueues,
  partitionKey,
  queuePrefix,
  QUEUES,
} from '../../bot/queues/queue-names.js';
import {
  eventPartitionsKey,
  parseEventPartitions,
  partitionsToDrain,
} from '../../bot/queues/partition-high-water.js';

const bot = { namespace: 'bots', name: 'sietch' };
const inGuild = (guildId: string, t = 'MESSAGE_CREATE') => ({ t, d: { guild_id: guildId, id: '1' } });

describe('the partition of a dispatch', () => {
  test('one partition: always 0, whatever the dispatch', () => {
    expect(eventPartitionOf(inGuild('123'), 1)).toBe(0);
    expect(eventPartitionOf({ t: 'USER_UPDATE', d: {} }, 1)).toBe(0);
  });

  test('by guild: every dispatch of a guild in one partition, whichever field names it', () => {
    for (const count of [2, 3, 7, 64]) {
      const p = eventPartitionOf(inGuild('81384788765712384'), count);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(count);
      expect(eventPartitionOf(inGuild('81384788765712384', 'MESSAGE_REACTION_ADD'), count)).toBe(p);
      expect(eventPartitionOf({ t: 'GUILD_CREATE', d: { id: '81384788765712384' } }, count)).toBe(p);
    }
  });

  test('without a guild: by channel, else one fixed partition', () => {
    const dm = { t: 'MESSAGE_CREATE', d: { channel_id: '55', id: '9' } };
    expect(eventPartitionOf(dm, 8)).toBe(eventPartitionOf({ t: 'TYPING_START', d: { channel_id: '55' } }, 8));
    const p = eventPartitionOf({ t: 'USER_UPDATE', d: { id: '5' } }, 8);
    expect(eventPartitionOf({ t: 'PRESENCE_UPDATE', d: {} }, 8)).toBe(p);
  });

  test('guilds spread over the partitions', () => {
    const counts = new Array<number>(4).fill(0);
    for (let i = 0; i < 4_000; i++)
      counts[eventPartitionOf(inGuild(String(81384788765712384n + BigInt(i) * 4194304n)), 4)]! += 1;
    // Loose: a hash, not a round robin; each gets a fair share.
    for (const n of counts) expect(n).toBeGreaterThan(700);
  });
});

describe('the partition function is a contract stored in Redis', () => {
  // Pods of two images with the same count must put a dispatch in the same partition (its claim
  // lives in that partition's slot): these values must never change (queue-names.ts).
  test('FNV-1a of the order key, pinned', () => {
    expect(eventPartitionOf(inGuild('81384788765712384'), 12)).toBe(10);
    expect(eventPartitionOf({ t: 'GUILD_CREATE', d: { id: '81384788765712384' } }, 12)).toBe(10);
    expect(eventPartitionOf(inGuild('613425648685547541'), 4)).toBe(0);
    expect(
      eventPartitionOf({ t: 'MESSAGE_CREATE', d: { channel_id: '155361364909621248', id: '1' } }, 7),
    ).toBe(3);
    expect(eventPartitionOf({ t: 'USER_UPDATE', d: {} }, 64)).toBe(53);
  });
});

describe('the keys of a partition', () => {
  test("partition 0 is the bot's prefix: one partition is the layout of releases before partitions", () => {
    expect(eventPartitionPrefix(bot, 0)).toBe(queuePrefix(bot));
    expect(eventPartitionPrefixes(bot, 1)).toEqual(['shardwarden:{bots/sietch}']);
    expect(botQueues(bot, 1)).toEqual(
      ALL_QUEUES.map((queue) => ({ queue, prefix: 'shardwarden:{bots/sietch}', partition: 0 })),
    );
  });

  test('every other partition has a hash tag of its own', () => {
    expect(eventPartitionPrefixes(bot, 3)).toEqual([
      'shardwarden:{bots/sietch}',
      'shardwarden:{bots/sietch#1}',
      'shardwarden:{bots/sietch#2}',
    ]);
    // The other partitions hold events only.
    expect(botQueues(bot, 3).slice(ALL_QUEUES.length)).toEqual([
      { queue: QUEUES.events, prefix: 'shardwarden:{bots/sietch#1}', partition: 1 },
      { queue: QUEUES.events, prefix: 'shardwarden:{bots/sietch#2}', partition: 2 },
    ]);
  });

  test("a gateway writes the interactions' queue, then each partition's events, in partition order", () => {
    expect(forwardedQueues(bot, 3)).toEqual([
      { queue: QUEUES.interactions, prefix: 'shardwarden:{bots/sietch}', partition: 0 },
      { queue: QUEUES.events, prefix: 'shardwarden:{bots/sietch}', partition: 0 },
      { queue: QUEUES.events, prefix: 'shardwarden:{bots/sietch#1}', partition: 1 },
      { queue: QUEUES.events, prefix: 'shardwarden:{bots/sietch#2}', partition: 2 },
    ]);
  });

  test("a key of a partition is in its slot; partition 0's are the bot's keys", () => {
    expect(partitionKey(bot, 2, 'gateway', 'write-probe')).toBe(
      'shardwarden:{bots/sietch#2}:gateway:write-probe',
    );
    expect(partitionKey(bot, 0, 'gateway', 'write-probe')).toBe(botKey(bot, 'gateway', 'write-probe'));
  });

  test('a partition outside 0..63 is a programming error, named', () => {
    expect(() => eventPartitionPrefix(bot, EVENT_PARTITIONS.max)).toThrow(
      'event partition 64 is not an integer in 0..63',
    );
    expect(() => eventPartitionPrefix(bot, -1)).toThrow('event partition -1');
  });
});

describe("the bot's partition high-water key", () => {
  test("in the bot's own slot, beside its other keys", () => {
    expect(eventPartitionsKey(bot)).toBe(`${queuePrefix(bot)}:event-partitions`);
  });

  test('absent or unreadable is one partition; above the bound is the bound', () => {
    expect(parseEventPartitions(null)).toBe(1);
    expect(parseEventPartitions('garbage')).toBe(1);
    expect(parseEventPartitions('0')).toBe(1);
    expect(parseEventPartitions('6')).toBe(6);
    expect(parseEventPartitions('500')).toBe(EVENT_PARTITIONS.max);
  });

  test('a worker drains only the partitions between its own count and the high-water mark', () => {
    expect(partitionsToDrain(1, 1)).toEqual([]);
    expect(partitionsToDrain(4, 2)).toEqual([]);
    expect(partitionsToDrain(2, 5)).toEqual([2, 3, 4]);
  });
});
