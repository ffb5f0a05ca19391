// The stuck-consumer watch replacing a consumer, with a real Redis: one consumer's blocking
// connection is stalled behind a TCP proxy, so its fetch of the next job never settles (as after
// a Redis Cluster master crash, docs/install.md), while its other connection still works.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { QUEUES } from '../../bot/queues/queue-names.js';
import { HandlerRegistry } from '../../bot/worker/handlers/handler-registry.js';
import { WorkerMetrics } from '../../bot/worker/metrics.js';
import { QueueTaskScheduler, WorkerRuntime } from '../../bot/worker/processing/worker-runtime.js';
import {
  startRedis,
  startTcpProxy,
  waitUntil,
  type RedisServer,
  type TcpProxy,
} from '../../testenv/index.js';

const PREFIX = 'stuck-test';

describe('the stuck-consumer watch', () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let direct: Redis;
  let proxied: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startTcpProxy('127.0.0.1', redis.port);
    direct = new Redis(redis.url);
    const viaProxy = new URL(redis.url);
    viaProxy.port = String(proxy.port);
    // As the worker's shared connection (main.ts): commands wait out a disconnect.
    proxied = new Redis(viaProxy.toString(), { maxRetriesPerRequest: null });
  });

  afterAll(async () => {
    proxied?.disconnect();
    direct?.disconnect();
    await proxy?.stop();
    await redis?.close();
  });

  test('replaces a consumer whose fetch never settles; its running job completes once, the queue drains', async () => {
    const runs = new Map<string, number>();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const registry = new HandlerRegistry([
      {
        name: 'test',
        tasks: [
          {
            name: 'work',
            async run(data) {
              const id = (data as { id: string }).id;
              runs.set(id, (runs.get(id) ?? 0) + 1);
              if (id === 'long') await released;
            },
          },
        ],
      },
    ]);
    const metrics = new WorkerMetrics(new Registry());
    const runtime = new WorkerRuntime({
      connection: proxied,
      prefix: PREFIX,
      queues: [QUEUES.tasks],
      concurrency: {
        [QUEUES.interactions]: 1,
        [QUEUES.events]: 1,
        [QUEUES.singleEvents]: 1,
        [QUEUES.tasks]: 2,
      },
      registry,
      // Only the tasks queue is consumed here: interactions and event batches never reach these.
      dispatcher: undefined as never,
      services: {} as never,
      events: undefined as never,
      metrics,
      log: pino({ level: 'silent' }),
      stuckAfterMs: 1_500,
      watchEveryMs: 250,
    });
    const scheduler = new QueueTaskScheduler(direct, PREFIX);
    const queue = new Queue(QUEUES.tasks, { connection: direct, prefix: PREFIX });
    const restarts = async () =>
      (await metrics.consumerRestarts.get()).values.reduce((n, v) => n + v.value, 0);
    try {
      runtime.start();
      await scheduler.enqueue('work', { id: 'long' });
      await waitUntil('the long job started', async () => runs.get('long') === 1);
      // Its blocking read (BZPOPMIN on the queue's marker) stalls; the shared connection does not.
      await waitUntil(
        'the consumer is blocked waiting for a job',
        async () => proxy.stallWhere(/bzpopmin/i) > 0,
      );
      const ids = ['a', 'b', 'c', 'd', 'e'];
      for (const id of ids) await scheduler.enqueue('work', { id });

      await waitUntil('the stuck consumer replaced', async () => (await restarts()) >= 1, {
        timeoutMs: 60_000,
      });
      await waitUntil('the waiting jobs run', async () => ids.every((id) => runs.get(id) === 1), {
        timeoutMs: 60_000,
      });
      // Still running on the replaced consumer, which must record it, not leave it to stall.
      release();
      await waitUntil(
        'every job completed',
        async () => (await queue.getJobCounts('completed')).completed === ids.length + 1,
        { timeoutMs: 60_000 },
      );
      const counts = await queue.getJobCounts('wait', 'active', 'failed', 'prioritized');
      expect(counts).toEqual({ wait: 0, active: 0, failed: 0, prioritized: 0 });
      expect(Object.fromEntries(runs)).toEqual(Object.fromEntries(['long', ...ids].map((id) => [id, 1])));
      expect(await restarts()).toBe(1);
    } finally {
      release();
      expect(await runtime.close(30_000)).toBe(true);
      proxy.resume();
      await scheduler.close();
      await queue.close();
    }
  }, 120_000);
});
