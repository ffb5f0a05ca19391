import { Queue, QueueEvents, Worker } from 'bullmq';
import { startRedis, type RedisServer } from '../../testenv/index.js';

describe('Redis from Debian', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });

  test('a BullMQ job is added and processed on the real server', async () => {
    const connection = { url: redis.url };
    const queue = new Queue<{ n: number }>('smoke', { connection });
    const events = new QueueEvents('smoke', { connection });
    const worker = new Worker<{ n: number }, number>('smoke', async (job) => job.data.n * 2, { connection });
    try {
      await events.waitUntilReady();
      const job = await queue.add('double', { n: 21 });
      await expect(job.waitUntilFinished(events, 10_000)).resolves.toBe(42);
      expect(await queue.getJobCounts('completed')).toEqual({ completed: 1 });
    } finally {
      await worker.close();
      await events.close();
      await queue.close();
    }
  });

  test('stop() and start() keep the URL (for outage tests)', async () => {
    await redis.stop();
    await redis.start();
    const queue = new Queue('after-restart', { connection: { url: redis.url } });
    try {
      await queue.add('x', {});
      expect(await queue.count()).toBe(1);
    } finally {
      await queue.close();
    }
  });

  test('a redis-server path that does not exist fails loudly', async () => {
    process.env.SHARDWARDEN_REDIS_SERVER = '/nonexistent/redis-server';
    try {
      await expect(startRedis()).rejects.toThrow(
        'SHARDWARDEN_REDIS_SERVER points at /nonexistent/redis-server, which is not an executable file',
      );
    } finally {
      delete process.env.SHARDWARDEN_REDIS_SERVER;
    }
  });
});
