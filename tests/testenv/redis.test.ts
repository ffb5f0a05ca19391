import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { redisServerArgs, startRedis, type RedisServer } from '../../testenv/index.js';

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

  test('beyond loopback only with a password: the server refuses a client without it', async () => {
    // Another address than loopback's 127.0.0.1, as a real node's bridge address would be.
    const server = await startRedis({ host: '127.0.0.2' });
    const url = new URL(server.url);
    expect(url.password).toMatch(/^[0-9a-f]{48}$/);
    const anonymous = new Redis({
      host: '127.0.0.2',
      port: server.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    const authed = new Redis(server.url.replace('127.0.0.1', '127.0.0.2'), { maxRetriesPerRequest: 0 });
    anonymous.on('error', () => undefined); // its refused handshake: what the ping below checks
    try {
      await anonymous.connect().catch(() => undefined);
      await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
      expect(await authed.ping()).toBe('PONG');
    } finally {
      anonymous.disconnect();
      authed.disconnect();
      await server.close();
    }
  });

  test("the server's arguments: another address needs a password, kept off the command line, with protected mode on", () => {
    expect(() => redisServerArgs({ port: 1, dir: '/d', host: '10.244.7.1' })).toThrow(
      'redis on 10.244.7.1: a password (authConfig) is required',
    );
    const args = redisServerArgs({ port: 1, dir: '/d', host: '10.244.7.1', authConfig: '/d/auth.conf' });
    expect(args[0]).toBe('/d/auth.conf');
    expect(args.join(' ')).toContain('--bind 127.0.0.1 10.244.7.1 ');
    expect(args).not.toContain('--protected-mode');
    expect(args.join(' ')).not.toMatch(/requirepass/);
  });
});
