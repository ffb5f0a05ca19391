// The Builtin autoscaler's Redis connections: one per Redis, shared by the bots that use it.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUES, queuePrefix } from '../../bot/queues/queue-names.js';
import { BacklogReader, backlogOf } from '../../operator/autoscaling/backlog-reader.js';
import { startRedis, type RedisServer } from '../../testenv/index.js';

describe('BacklogReader connections (real Redis)', () => {
  let a: RedisServer;
  let b: RedisServer;
  const reader = new BacklogReader();
  beforeAll(async () => {
    [a, b] = await Promise.all([startRedis(), startRedis()]);
  });
  afterAll(async () => {
    reader.close();
    await Promise.all([a?.close(), b?.close()]);
  });

  test('bots on one Redis share a connection, closed when the last of them goes', async () => {
    const read = (key: string, url: string) =>
      reader.read(key, { namespace: 'ns', name: key.split('/')[1]! }, url);
    await Promise.all([read('ns/one', a.url), read('ns/two', a.url), read('ns/three', b.url)]);
    expect(reader.size()).toBe(2);
    // A bot moving to another Redis leaves the first one to the bots still on it.
    await read('ns/two', b.url);
    expect(reader.size()).toBe(2);
    reader.forget('ns/one');
    expect(reader.size()).toBe(1);
    expect((await read('ns/three', b.url)).every((q) => q.waiting === 0)).toBe(true);
    reader.forget('ns/two');
    reader.forget('ns/three');
    expect(reader.size()).toBe(0);
  });
});

describe('BacklogReader counts (real Redis)', () => {
  let redis: RedisServer;
  const reader = new BacklogReader();
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    reader.close();
    await redis?.close();
  });

  test('with legacyKeys the old wait lists count too, marked as such', async () => {
    const client = new Redis(redis.url);
    try {
      await client.rpush('shardwarden:{relay}:events:wait', 'a', 'b');
      await client.rpush('shardwarden:{ns/relay}:events:wait', 'c');
      const bot = { namespace: 'ns', name: 'relay' };
      expect(backlogOf(await reader.read('ns/relay', bot, redis.url))).toBe(1);
      const both = await reader.read('ns/relay', bot, redis.url, Date.now(), true);
      expect(backlogOf(both)).toBe(3);
      // Releases before namespaced keys wrote no batches: their event-batches list is not read.
      expect(both.filter((q) => q.oldKeys).map((q) => [q.queue, q.waiting])).toEqual([
        ['interactions', 0],
        ['events', 2],
        ['tasks', 0],
      ]);
    } finally {
      client.disconnect();
    }
  });

  test('waiting, prioritized and due delayed jobs per queue; a paused queue is marked', async () => {
    const bot = { namespace: 'ns', name: 'counted' };
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = (name: string) => new Queue(name, { connection, prefix: queuePrefix(bot) });
    const tasks = queue(QUEUES.tasks);
    const interactions = queue(QUEUES.interactions);
    try {
      await tasks.addBulk([
        { name: 'a', data: {} },
        { name: 'b', data: {} },
        { name: 'c', data: {}, opts: { priority: 5 } },
        { name: 'd', data: {}, opts: { delay: 3_600_000 } },
      ]);
      await interactions.add('e', {});
      await interactions.pause();
      const byQueue = Object.fromEntries(
        (await reader.read('ns/counted', bot, redis.url)).map((q) => [q.queue, q]),
      );
      expect(byQueue[QUEUES.tasks]).toMatchObject({
        waiting: 2,
        prioritized: 1,
        dueDelayed: 0,
        paused: false,
      });
      // An hour from now, the delayed job is due.
      const later = await reader.read('ns/counted', bot, redis.url, Date.now() + 3_600_001);
      expect(later.find((q) => q.queue === QUEUES.tasks)?.dueDelayed).toBe(1);
      expect(byQueue[QUEUES.interactions]?.paused).toBe(true);
      expect(backlogOf(Object.values(byQueue))).toBe(3);
    } finally {
      await Promise.all([tasks.close(), interactions.close()]);
      connection.disconnect();
    }
  });
});
