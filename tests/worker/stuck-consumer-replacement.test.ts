// The stuck-consumer watch with a real Redis. The runtime's connections go through a TCP proxy:
// stalling one consumer's blocking connection makes its fetch of the next job never settle (as
// after a Redis Cluster master crash, docs/install.md) while its other connection still works;
// stalling them all is a Redis outage as the worker sees it.
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

// A look's count must answer within its interval or tells nothing (worker-runtime.ts): an
// interval of a second keeps a loaded machine's slow round trips from resetting the watch.
const STUCK_AFTER_MS = 3_000;
const WATCH_EVERY_MS = 1_000;
/** A BullMQ Worker's blocking read of its queue's marker: only its blocking connection sends it. */
const BLOCKING_READ = /bzpopmin/i;

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

  /** A runtime consuming only `prefix`'s tasks queue (2 at once), whose `work` tasks count their runs. */
  function tasksRuntime(prefix: string) {
    const runs = new Map<string, number>();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const warnings: string[] = [];
    const metrics = new WorkerMetrics(new Registry());
    const runtime = new WorkerRuntime({
      connection: proxied,
      prefix,
      queues: [QUEUES.tasks],
      concurrency: {
        [QUEUES.interactions]: 1,
        [QUEUES.events]: 1,
        [QUEUES.singleEvents]: 1,
        [QUEUES.tasks]: 2,
      },
      registry: new HandlerRegistry([
        {
          name: 'test',
          tasks: [
            {
              name: 'work',
              async run(data) {
                const id = (data as { id: string }).id;
                runs.set(id, (runs.get(id) ?? 0) + 1);
                // `long` runs until the test releases it.
                if (id === 'long') await released;
              },
            },
          ],
        },
      ]),
      // Only the tasks queue is consumed here: interactions and event batches never reach these.
      dispatcher: undefined as never,
      services: {} as never,
      events: undefined as never,
      metrics,
      log: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) }),
      stuckAfterMs: STUCK_AFTER_MS,
      watchEveryMs: WATCH_EVERY_MS,
    });
    const scheduler = new QueueTaskScheduler(direct, prefix);
    const queue = new Queue(QUEUES.tasks, { connection: direct, prefix });
    return {
      runtime,
      runs,
      release,
      warnings,
      enqueue: (...ids: string[]) => Promise.all(ids.map((id) => scheduler.enqueue('work', { id }))),
      restarts: async () => (await metrics.consumerRestarts.get()).values.reduce((n, v) => n + v.value, 0),
      async drained(jobs: number) {
        await waitUntil(
          'every job completed',
          async () => (await queue.getJobCounts('completed')).completed === jobs,
          { timeoutMs: 60_000 },
        );
        expect(await queue.getJobCounts('wait', 'active', 'failed', 'prioritized')).toEqual({
          wait: 0,
          active: 0,
          failed: 0,
          prioritized: 0,
        });
      },
      async close() {
        release();
        proxy.resume();
        expect(await runtime.close(30_000)).toBe(true);
        await scheduler.close();
        await queue.close();
      },
    };
  }

  const once = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, 1]));

  test('replaces a consumer whose fetch never settles; its running job completes once, the queue drains', async () => {
    const t = tasksRuntime('stuck-test');
    try {
      t.runtime.start();
      await t.enqueue('long');
      await waitUntil('the long job started', async () => t.runs.get('long') === 1);
      await waitUntil(
        'the consumer is blocked waiting for a job',
        async () => proxy.stallWhere(BLOCKING_READ) > 0,
      );
      const ids = ['a', 'b', 'c', 'd', 'e'];
      await t.enqueue(...ids);

      await waitUntil('the stuck consumer replaced', async () => (await t.restarts()) >= 1, {
        timeoutMs: 60_000,
      });
      await waitUntil('the waiting jobs run', async () => ids.every((id) => t.runs.get(id) === 1), {
        timeoutMs: 60_000,
      });
      // Still running on the replaced consumer, which must record it, not leave it to stall.
      t.release();
      await t.drained(ids.length + 1);
      expect(Object.fromEntries(t.runs)).toEqual(once(['long', ...ids]));
      expect(await t.restarts()).toBe(1);
    } finally {
      await t.close();
    }
  }, 120_000);

  test('a paused queue with jobs waiting longer than the stuck time does not get a consumer replaced', async () => {
    const prefix = 'paused-test';
    const t = tasksRuntime(prefix);
    const queue = new Queue(QUEUES.tasks, { connection: direct, prefix });
    try {
      await queue.pause();
      t.runtime.start();
      const ids = ['a', 'b'];
      await t.enqueue(...ids);
      // The watch's looks at the paused flag, over more than the stuck time.
      const looks = proxy.countSent(
        new RegExp(`hexists\\r\\n\\$\\d+\\r\\n${prefix}:${QUEUES.tasks}:meta`, 'gi'),
      );
      await waitUntil(
        'the watch looked for longer than the stuck time',
        async () => looks() >= Math.ceil(STUCK_AFTER_MS / WATCH_EVERY_MS) + 2,
        { timeoutMs: 60_000 },
      );
      expect(t.runs.size).toBe(0);
      expect(await t.restarts()).toBe(0);
      await queue.resume();
      await t.drained(ids.length);
      expect(Object.fromEntries(t.runs)).toEqual(once(ids));
      expect(await t.restarts()).toBe(0);
    } finally {
      await queue.close();
      await t.close();
    }
  }, 120_000);

  test('a Redis outage longer than the stuck time does not get a consumer replaced', async () => {
    const prefix = 'outage-test';
    const t = tasksRuntime(prefix);
    try {
      t.runtime.start();
      await waitUntil(
        'the consumer is blocked waiting for a job',
        async () => proxy.stallWhere(BLOCKING_READ) > 0,
      );
      const ids = ['a', 'b', 'c'];
      await t.enqueue(...ids);
      // A look answered after the jobs came (a second count is sent only once the first's answer
      // was taken): the watch has seen the consumer idle with work.
      const counts = proxy.countSent(
        new RegExp(`llen\\r\\n\\$\\d+\\r\\n${prefix}:${QUEUES.tasks}:wait`, 'gi'),
      );
      await waitUntil('the watch counted the waiting jobs', async () => counts() >= 2);
      // Then Redis stops answering anyone, for longer than the stuck time.
      proxy.stall();
      const stalledAt = Date.now();
      await waitUntil(
        'the outage outlasted the stuck time',
        async () => Date.now() - stalledAt > STUCK_AFTER_MS + 2 * WATCH_EVERY_MS,
      );
      proxy.resume();
      await t.drained(ids.length);
      expect(Object.fromEntries(t.runs)).toEqual(once(ids));
      expect(await t.restarts()).toBe(0);
      // Warned once for the whole outage, not once per look.
      expect(t.warnings.filter((m) => m.includes('could not count waiting jobs'))).toHaveLength(1);
    } finally {
      await t.close();
    }
  }, 120_000);
});
