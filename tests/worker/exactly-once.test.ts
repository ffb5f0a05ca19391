// Exactly once at the worker: a real worker process (the demo's ledger module counts every run
// of every MESSAGE_CREATE handler) is SIGKILLed while a batch runs and started again. Dispatches
// are marked done one by one as they finish, so only those whose handler had its effect but whose
// done mark was not yet written at the kill may run twice; everything else runs exactly once.
// And two workers taking batches that carry the same dispatches (a replay, a reshard's overlap)
// run each once.
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { DiscordSimulator, messagePayload } from '../../discord-simulator/index.js';
import { bulkJobs, type Pending } from '../../bot/gateway/forwarding/job-batches.js';
import { botKey, DEDUP_WINDOW_SECONDS, QUEUES, queuePrefix } from '../../bot/queues/queue-names.js';
import { oldWorkerClientName } from '../../bot/worker/processing/claim-format.js';
import { DispatchClaims } from '../../bot/worker/processing/dispatch-claims.js';
import { ledgerKeys } from '../../demo/event-ledger.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';
import { BOT_REF } from '../gateway/harness.js';
import { startWorker, workerEnv, type WorkerProcess } from './harness.js';

const LEDGER_MODULE = fileURLToPath(new URL('../../dist/demo/event-ledger.js', import.meta.url));
const CONCURRENCY = 10;
const BATCHES = 4;
const PER_BATCH = 100;

/** Batches as gateways write them: `guilds` guilds, each guild's messages in order. */
function batchesOf(ids: readonly string[], perBatch: number, guilds = 20) {
  const jobs = [];
  for (let b = 0; b < ids.length; b += perBatch) {
    const batch: Pending[] = ids.slice(b, b + perBatch).map((id, i) => ({
      queue: 'events',
      dispatch: {
        t: 'MESSAGE_CREATE',
        d: messagePayload({ id, guildId: String(1_000 + (Number(id) % guilds)), channelId: '1' }),
        shardId: 0,
        seq: i,
        receivedAt: Date.now(),
        generation: 1,
        key: `MESSAGE_CREATE-${id}`,
      },
    }));
    jobs.push(...bulkJobs(batch).events!);
  }
  return jobs;
}

describe('exactly once at the worker', () => {
  let sim: DiscordSimulator;
  let redis: RedisServer;
  let client: Redis;
  let queue: Queue;
  let worker: WorkerProcess | undefined;
  const keys = ledgerKeys((...parts) => botKey(BOT_REF, ...parts));
  // The marks as the worker reads them (its window decides the buckets).
  const marksOf = (ids: readonly string[]) => {
    const claims = new DispatchClaims(client, queuePrefix(BOT_REF), DEDUP_WINDOW_SECONDS);
    return Promise.all(ids.map((id) => claims.markOf(`MESSAGE_CREATE-${id}`)));
  };

  beforeAll(async () => {
    sim = await DiscordSimulator.start({ seed: 11, guilds: 1, guildSize: { members: 2 } });
    redis = await startRedis();
    client = new Redis(redis.url);
    queue = new Queue(QUEUES.events, { connection: { url: redis.url }, prefix: queuePrefix(BOT_REF) });
  });
  afterAll(async () => {
    await worker?.proc.stop();
    await queue?.close();
    client?.disconnect();
    await sim?.stop();
    await redis?.close();
  });

  const start = async () =>
    startWorker(
      await workerEnv(sim, redis.url, {
        SHARDWARDEN_HANDLER_MODULES: LEDGER_MODULE,
        SHARDWARDEN_WORKER_CONCURRENCY: String(CONCURRENCY),
        // Each handler takes a while, so the kill lands inside a batch.
        SHARDWARDEN_DEMO_EVENT_DELAY_MS: '50',
      }),
    );

  test('only the dispatches in flight at the kill run twice; all the others exactly once', async () => {
    const ids = Array.from({ length: BATCHES * PER_BATCH }, (_, i) => String(50_000_000 + i));
    await queue.addBulk(batchesOf(ids, PER_BATCH));
    worker = await start();
    const processed = async () => client.scard(keys.processed);
    await waitUntil('some of the first batch processed', async () => (await processed()) >= 30, {
      timeoutMs: 60_000,
      intervalMs: 10,
    });
    worker.proc.child.kill('SIGKILL');
    await waitUntil('the worker gone', async () => worker!.proc.exited());

    // What Redis holds at the kill: handlers that had their effect, and done marks written.
    const effected = await client.smembers(keys.processed);
    expect(effected.length).toBeLessThan(ids.length); // killed mid-stream
    const marks = await marksOf(effected);
    const inFlight = effected.filter((_, i) => marks[i] !== 'done');
    // At most the handlers running at once, and those that finished in the last tick or two
    // before their marks' round trip: never the whole batch (done marks at the batch's end
    // would leave every effected dispatch of it unmarked).
    expect(inFlight.length).toBeLessThanOrEqual(2 * CONCURRENCY);

    // The job is BullMQ's again once the dead worker's lock expires (stalled-job check).
    worker = await start();
    await waitUntil('every dispatch processed', async () => (await processed()) === ids.length, {
      timeoutMs: 180_000,
      intervalMs: 200,
    });
    await waitUntil('every batch done', async () => {
      const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
      return Object.values(c).every((n) => n === 0);
    });
    expect(await queue.getJobCounts('failed')).toEqual({ failed: 0 });
    // Exactly the in-flight ones ran twice (their claims, of a dead attempt, were taken over).
    expect(Number((await client.get(keys.duplicates)) ?? 0)).toBe(inFlight.length);
    expect(await client.smembers(keys.processed)).toHaveLength(ids.length);
    const done = await marksOf(ids);
    expect(done.filter((v) => v !== 'done')).toEqual([]);
    // No worker of the release with a key per dispatch was connected: none was written.
    expect(await client.exists(`${queuePrefix(BOT_REF)}:claims:per-key`)).toBe(0);
    expect(await client.keys(`${queuePrefix(BOT_REF)}:dispatch:*`)).toEqual([]);
  }, 400_000);

  test('two workers taking batches that carry the same dispatches run each once', async () => {
    await worker?.proc.stop();
    await client.del(keys.processed, keys.duplicates);
    const ids = Array.from({ length: 400 }, (_, i) => String(60_000_000 + i));
    const workers = [await start(), await start()];
    try {
      // Every dispatch twice, in batches cut differently (another gateway generation's copy).
      await queue.addBulk([...batchesOf(ids, 50), ...batchesOf([...ids].reverse(), 40)]);
      await waitUntil(
        'every dispatch processed',
        async () => (await client.scard(keys.processed)) === ids.length,
        {
          timeoutMs: 120_000,
          intervalMs: 200,
        },
      );
      await waitUntil('every batch done', async () => {
        const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
        return Object.values(c).every((n) => n === 0);
      });
      expect(await client.get(keys.duplicates)).toBeNull();
    } finally {
      await Promise.all(workers.map((w) => w.proc.stop()));
    }
  }, 300_000);

  test('a worker started beside a consumer of the release with per-key claims writes those marks from its first batch', async () => {
    await client.del(keys.processed, keys.duplicates);
    // The old release's consumer, as CLIENT LIST shows it (unnamed BullMQ worker's connection).
    const old = new Redis(redis.url, { connectionName: oldWorkerClientName(queuePrefix(BOT_REF)) });
    const ids = Array.from({ length: 20 }, (_, i) => String(70_000_000 + i));
    // Queued before the worker starts: its first batch is there the moment it consumes.
    // The first worker of the new release (the earlier tests' workers looked within the interval,
    // before the old consumer connected: their look would hold this one's off until the next).
    await client.del(`${queuePrefix(BOT_REF)}:claims:look`);
    await queue.addBulk(batchesOf(ids, 20));
    const w = await start();
    try {
      await waitUntil('the batch processed', async () => (await client.scard(keys.processed)) === ids.length);
      expect(await client.exists(`${queuePrefix(BOT_REF)}:claims:per-key`)).toBe(1);
      const perKey = await client.mget(
        ids.map((id) => `${queuePrefix(BOT_REF)}:dispatch:MESSAGE_CREATE-${id}`),
      );
      expect(perKey.filter((v) => v !== 'done')).toEqual([]);
    } finally {
      await w.proc.stop();
      old.disconnect();
      await client.del(`${queuePrefix(BOT_REF)}:claims:per-key`);
    }
  }, 300_000);
});
