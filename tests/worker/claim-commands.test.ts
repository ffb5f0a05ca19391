// Redis commands per dispatch of the claims at small batches (1 and 2 dispatches, handlers that
// await a round trip of their own, as real ones do): the hashes per time bucket against the
// per-key claims of the release before them (tests/worker/per-key-claims.ts, run by this
// release's runner, whose done marks are coalesced: the earlier runner wrote one per tick, so
// its figure is at least this one's). Counted by Redis itself (INFO commandstats), every
// command a script runs included. Printed for docs/benchmarks.md; asserted: no more than before.
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { queuePrefix, type BatchedDispatch } from '../../bot/queues/queue-names.js';
import { defineBotModule, type WorkerServices } from '../../bot/worker/handlers/bot-module.js';
import { HandlerRegistry } from '../../bot/worker/handlers/handler-registry.js';
import { WorkerMetrics } from '../../bot/worker/metrics.js';
import { DispatchClaims, type Claims } from '../../bot/worker/processing/dispatch-claims.js';
import { EventBatchRunner, Slots } from '../../bot/worker/processing/event-batch-runner.js';
import { startRedis, type RedisServer } from '../../testenv/index.js';
import { PerKeyClaims } from './per-key-claims.js';

const BATCHES = 200;

/**
 * Every command Redis ran since the last reset, but the handlers' own PINGs and the reading; and
 * the scripts' time (µs, their commands included; CPU time, but on a loaded machine indicative only).
 */
async function commandsRun(redis: Redis): Promise<{ calls: number; scriptUs: number }> {
  const stats = await redis.info('commandstats');
  let calls = 0;
  let scriptUs = 0;
  for (const [, name, n, us] of stats.matchAll(/cmdstat_(\S+?):calls=(\d+),usec=(\d+)/g)) {
    if (!['ping', 'info', 'config|resetstat'].includes(name!)) calls += Number(n);
    if (name === 'evalsha' || name === 'eval') scriptUs += Number(us);
  }
  return { calls, scriptUs };
}

describe('Redis commands per dispatch at small batches', () => {
  let server: RedisServer;
  let redis: Redis;
  let io: Redis;
  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    io = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    io?.disconnect();
    await server?.close();
  });

  /** Commands per dispatch of `BATCHES` batches of `size` (a guild each, the bot's partition 0). */
  async function perDispatch(
    claims: Claims,
    size: number,
    tag: string,
  ): Promise<{ commands: number; scriptUs: number }> {
    const prefix = claims.prefix;
    const runner = new EventBatchRunner({
      claims,
      registry: new HandlerRegistry([
        defineBotModule({
          name: 'io',
          events: [{ type: 'MESSAGE_CREATE', handle: async () => void (await io.ping()) }],
        }),
      ]),
      services: {} as WorkerServices,
      metrics: new WorkerMetrics(new Registry()),
      slots: new Slots(4),
      handlerTimeoutMs: 60_000,
    });
    // BullMQ holds each job's lock while it runs (written before the count starts: not the claims').
    const lockKey = (b: number) => `${prefix}:event-batches:${tag}-${b}:lock`;
    for (let b = 0; b < BATCHES; b++) await redis.set(lockKey(b), 't1');
    await redis.config('RESETSTAT');
    for (let b = 0; b < BATCHES; b++) {
      const dispatches: BatchedDispatch[] = Array.from({ length: size }, (_, i) => ({
        t: 'MESSAGE_CREATE',
        d: { id: `${tag}-${b}-${i}`, guild_id: String(i) },
        shardId: 0,
        seq: 1,
        receivedAt: 1_000,
        generation: 1,
        key: `${tag}-${b}-${i}`,
      }));
      const job = `event-batches/${tag}-${b}`;
      await runner.run(
        {
          owner: {
            job: `${prefix}:${job}/`,
            token: 't1',
            lockKey: lockKey(b),
            singleJobPrefix: `${prefix}:events:`,
          },
          lastAttempt: false,
        },
        dispatches,
      );
    }
    const { calls, scriptUs } = await commandsRun(redis);
    return { commands: calls / (BATCHES * size), scriptUs: scriptUs / (BATCHES * size) };
  }

  test('the buckets cost no more commands per dispatch than the per-key claims at batches of 1 and 2', async () => {
    const rows: string[] = [];
    for (const size of [1, 2]) {
      const before = await perDispatch(
        new PerKeyClaims(redis, queuePrefix({ namespace: 'ns', name: 'old' }), 3600),
        size,
        `o${size}`,
      );
      const buckets = new DispatchClaims(redis, queuePrefix({ namespace: 'ns', name: 'new' }), 3600);
      await buckets.readMode();
      const after = await perDispatch(buckets, size, `n${size}`);
      rows.push(
        `batch of ${size}: commands per dispatch per-key ${before.commands.toFixed(2)}, buckets ${after.commands.toFixed(2)}; ` +
          `script µs per dispatch per-key ${before.scriptUs.toFixed(1)}, buckets ${after.scriptUs.toFixed(1)}`,
      );
      expect(after.commands).toBeLessThanOrEqual(before.commands);
    }
    console.log(rows.join('\n'));
  });
});
