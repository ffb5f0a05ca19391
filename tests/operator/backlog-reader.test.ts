// The Builtin autoscaler's Redis connections: one per Redis, shared by the bots that use it.
import { Redis } from 'ioredis';
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

describe('BacklogReader and the queues of releases before namespaced keys', () => {
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
});
