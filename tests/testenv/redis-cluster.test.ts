import { Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { connectRedis, type RedisClient } from '../../bot/configuration/redis-connection.js';
import { parseRedisTarget } from '../../bot/configuration/redis-target.js';
import { queuePrefix } from '../../bot/queues/queue-names.js';
import { startRedisCluster, waitUntil, type RedisClusterServer } from '../../testenv/index.js';

describe('Redis Cluster from Debian', () => {
  let cluster: RedisClusterServer;
  let client: RedisClient;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = connectRedis(parseRedisTarget(cluster.url, 'test'), { maxRetriesPerRequest: null });
  }, 180_000);
  afterAll(async () => {
    client?.disconnect();
    await cluster?.close();
  });

  test('three masters with a replica each, all slots served', async () => {
    const masters = new Set<number>();
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'])
      masters.add((await cluster.masterOf(key)).port);
    expect(masters.size).toBe(3);
    expect(cluster.nodes).toHaveLength(6);
    await client.set('{x}:k', 'v');
    expect(await client.get('{x}:k')).toBe('v');
  });

  test('password-protected: a client without the credentials is refused; the URL carries them', async () => {
    const anonymous = new Redis({
      host: '127.0.0.1',
      port: cluster.nodes[0]!.port,
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const refusals: string[] = [];
    anonymous.on('error', (err: Error) => refusals.push(err.message));
    try {
      await expect(anonymous.connect().then(() => anonymous.get('{x}:k'))).rejects.toThrow();
      expect(refusals.some((m) => m.startsWith('NOAUTH'))).toBe(true);
    } finally {
      anonymous.disconnect();
    }
    const target = parseRedisTarget(cluster.url, 'test');
    expect(target).toMatchObject({ username: 'shardwarden', password: cluster.password });
    expect(cluster.password).toMatch(/[@/]/);
  });

  test('a BullMQ job under a bot prefix (one hash tag) is added and processed', async () => {
    const prefix = queuePrefix({ namespace: 'ns', name: 'smoke' });
    const queue = new Queue<{ n: number }>('smoke', { connection: client, prefix });
    const worker = new Worker<{ n: number }, number>('smoke', async (job) => job.data.n * 2, {
      connection: client,
      prefix,
    });
    try {
      const job = await queue.add('double', { n: 21 });
      // The job's own state, not QueueEvents: its stream is read from the first XREAD on, and on a
      // loaded machine the worker could finish the job before that read was sent.
      await waitUntil('the job completed', async () => (await job.getState()) === 'completed', {
        timeoutMs: 120_000,
      });
      expect((await Job.fromId(queue, job.id!))?.returnvalue).toBe(42);
    } finally {
      await worker.close();
      await queue.close();
    }
  });

  test('an empty slot moved to another master is served there; a slot holding keys is not moved', async () => {
    const from = await cluster.masterOf('{placed}:k');
    const masters = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((k) => cluster.masterOf(`{${k}}`)));
    const to = masters.find((m) => m.port !== from.port)!;
    await cluster.moveSlot('{placed}:k', to);
    expect((await cluster.masterOf('{placed}:k')).port).toBe(to.port);
    // ioredis follows the MOVED answer to the slot's new master.
    await client.set('{placed}:k', 'v');
    expect(await client.get('{placed}:k')).toBe('v');
    await expect(cluster.moveSlot('{placed}:k', from)).rejects.toThrow('holds keys: not moved');
  });

  test('a graceful failover promotes the replica and keeps what was written', async () => {
    await client.set('{failover}:k', 'kept');
    const { from, to } = await cluster.failover('{failover}:k', 'graceful');
    expect(to.port).not.toBe(from.port);
    expect((await cluster.masterOf('{failover}:k')).port).toBe(to.port);
    // ioredis follows the MOVED answer to the new master.
    expect(await client.get('{failover}:k')).toBe('kept');
  });

  test('a killed master: the cluster promotes its replica, and a command for its slot sent meanwhile waits for it', async () => {
    const key = '{killed}:k';
    await client.set(key, 'before');
    const from = await cluster.masterOf(key);
    const failover = cluster.failover(key, 'kill');
    await waitUntil('the master killed', async () => !from.running(), { timeoutMs: 30_000, intervalMs: 20 });
    // The node timeout (5 s) and the election are well above ioredis's default ~1.6 s.
    const during = client.set(key, 'during');
    const { to } = await failover;
    await expect(during).resolves.toBe('OK');
    expect(await client.get(key)).toBe('during');
    expect((await cluster.masterOf(key)).port).toBe(to.port);
    await cluster.restart(from);
  }, 180_000);
});

describe('a Redis Cluster over TLS, its certificate naming only its host name', () => {
  let cluster: RedisClusterServer;
  beforeAll(async () => {
    cluster = await startRedisCluster({ tls: true });
  }, 180_000);
  afterAll(async () => {
    await cluster?.close();
  });

  test('a rediss+cluster:// client reaches every master by the announced name', async () => {
    const target = parseRedisTarget(cluster.url, 'test');
    // The test CA instead of the system's: what a pod would get with NODE_EXTRA_CA_CERTS.
    const client = connectRedis(target, { maxRetriesPerRequest: null, tls: { ca: cluster.ca } });
    try {
      const keys = ['{a}:k', '{b}:k', '{c}:k', '{d}:k', '{e}:k', '{f}:k'];
      const masters = new Set(await Promise.all(keys.map(async (k) => (await cluster.masterOf(k)).port)));
      expect(masters.size).toBe(3);
      for (const k of keys) await client.set(k, k);
      expect(await Promise.all(keys.map((k) => client.get(k)))).toEqual(keys);
    } finally {
      client.disconnect();
    }
  }, 60_000);
});
