// The identify throttler against a real Redis, with one throttler per ioredis connection standing
// for one gateway pod: one identify per bucket per window, buckets independent, waiters served
// in arrival order, and neither a dead waiter nor a dead holder blocks a bucket for long.
import { getEventListeners } from 'node:events';
import { Redis } from 'ioredis';
import {
  RedisIdentifyThrottler,
  type IdentifyThrottlerOptions,
} from '../../bot/gateway/identify/redis-identify-throttler.js';
import { botKey } from '../../bot/queues/queue-names.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';

let redis: RedisServer;
const connections: Redis[] = [];
let raw: Redis;
let botSeq = 0;

beforeAll(async () => {
  redis = await startRedis();
  raw = connect();
});
afterAll(async () => {
  await Promise.all(
    connections.splice(0).map((c) => (c.status === 'end' ? undefined : c.quit().catch(() => c.disconnect()))),
  );
  await redis?.close();
});

function connect(): Redis {
  const c = new Redis(redis.url, { maxRetriesPerRequest: null });
  c.on('error', () => undefined);
  connections.push(c);
  return c;
}

/** A fresh bot per test, so no test sees another's queues or locks. */
function freshBot(): string {
  botSeq += 1;
  return `throttlebot${botSeq}`;
}

/** `count` pods, each its own connection and throttler, all on one bot. */
function pods(count: number, options: Omit<IdentifyThrottlerOptions, 'marginMs'>): RedisIdentifyThrottler[] {
  return Array.from(
    { length: count },
    () => new RedisIdentifyThrottler(connect(), { marginMs: 0, ...options }),
  );
}

function keys(botName: string, bucket: number) {
  return {
    queue: botKey(botName, 'identify', bucket, 'queue'),
    lock: botKey(botName, 'identify', bucket, 'lock'),
    alive: (member: string) => botKey(botName, 'identify', 'alive', '') + member,
  };
}

/** Starts a wait and records when it resolved (or how it failed). */
function timedWait(t: RedisIdentifyThrottler, shardId: number, signal = new AbortController().signal) {
  const started = Date.now();
  const result = t.waitForIdentify(shardId, signal).then(
    () => ({ shardId, started, at: Date.now(), error: undefined as unknown }),
    (error: unknown) => ({ shardId, started, at: Date.now(), error }),
  );
  return result;
}

async function queueLength(queue: string, n: number): Promise<void> {
  await waitUntil(`${n} waiters queued on ${queue}`, async () => (await raw.zcard(queue)) === n, {
    timeoutMs: 10_000,
    intervalMs: 5,
  });
}

// Date.now() is read in this process after the Redis reply arrives; on two busy shared cores the
// first reading can lag its lock by a few tens of ms, which shortens the measured gap by as much.
const RECORDING_SLACK_MS = 40;

describe('RedisIdentifyThrottler', () => {
  test('turns on one bucket are at least a window apart across pods; other buckets do not wait', async () => {
    const botName = freshBot();
    const windowMs = 400;
    const [a, b, c] = pods(3, { botName, maxConcurrency: 2, windowMs });
    // Shards 0, 2 and 4 share bucket 0 (shard % 2), each on its own pod.
    const turns = await Promise.all([timedWait(a!, 0), timedWait(b!, 2), timedWait(c!, 4)]);
    const times = turns.map((t) => t.at).sort((x, y) => x - y);
    expect(turns.every((t) => t.error === undefined)).toBe(true);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(windowMs - RECORDING_SLACK_MS);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(windowMs - RECORDING_SLACK_MS);

    // Bucket 0 busy again for a long window: shard 1 (bucket 1) goes straight through while
    // shard 6 (bucket 0) waits for the window.
    const [d, e, f] = pods(3, { botName: freshBot(), maxConcurrency: 2, windowMs: 1_500 });
    const first = await timedWait(d!, 0);
    const [other, same] = await Promise.all([timedWait(e!, 1), timedWait(f!, 6)]);
    expect(other.error).toBeUndefined();
    expect(other.at - other.started).toBeLessThan(750);
    expect(same.at - first.at).toBeGreaterThanOrEqual(1_500 - RECORDING_SLACK_MS);
  });

  test('waiters on one bucket are served in arrival order, across pods', async () => {
    const botName = freshBot();
    const throttlers = pods(3, { botName, maxConcurrency: 1, windowMs: 300 });
    const { queue, lock } = keys(botName, 0);
    // Someone holds the bucket long enough for every waiter to queue up behind it.
    await raw.set(lock, 'holder', 'PX', 1_500);
    const order: number[] = [];
    const waits: Promise<unknown>[] = [];
    const arrival = [5, 3, 8, 1, 4];
    for (const [i, shardId] of arrival.entries()) {
      // Alternate pods; wait until each is in the queue (and a ms later) so arrival is defined.
      waits.push(
        throttlers[i % 3]!.waitForIdentify(shardId, new AbortController().signal).then(() =>
          order.push(shardId),
        ),
      );
      await queueLength(queue, i + 1);
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(waits);
    expect(order).toEqual(arrival);
    expect(await raw.zcard(queue)).toBe(0);
  });

  test('a waiter that died in the queue blocks the bucket only until its alive key expires', async () => {
    const botName = freshBot();
    const [pod] = pods(1, { botName, maxConcurrency: 1, windowMs: 300 });
    const { queue, alive } = keys(botName, 0);
    const aliveTtlMs = 800;
    // A waiter from a pod that crashed: ahead in the queue, alive key never refreshed.
    await raw.zadd(queue, Date.now() - 1_000, 'dead:1');
    await raw.set(alive('dead:1'), '1', 'PX', aliveTtlMs);
    const turn = await timedWait(pod!, 0);
    expect(turn.error).toBeUndefined();
    // It respected the dead waiter while its key lived (it was first), then skipped it.
    expect(turn.at - turn.started).toBeGreaterThanOrEqual(aliveTtlMs - 200);
    expect(turn.at - turn.started).toBeLessThan(aliveTtlMs + 2_000);
    expect(await raw.zscore(queue, 'dead:1')).toBeNull();
  });

  test('a holder that died right after taking the lock blocks the bucket for one window, not forever', async () => {
    const botName = freshBot();
    const windowMs = 500;
    const dyingConnection = connect();
    const dying = new RedisIdentifyThrottler(dyingConnection, {
      botName,
      maxConcurrency: 1,
      windowMs,
      marginMs: 0,
    });
    const [survivor] = pods(1, { botName, maxConcurrency: 1, windowMs });
    const held = await timedWait(dying, 0);
    dyingConnection.disconnect(); // the pod is gone; nothing will ever release the lock
    const lockTtl = await raw.pttl(keys(botName, 0).lock);
    expect(lockTtl).toBeGreaterThan(0);
    expect(lockTtl).toBeLessThanOrEqual(windowMs);
    const turn = await timedWait(survivor!, 0);
    expect(turn.error).toBeUndefined();
    expect(turn.at - held.at).toBeGreaterThanOrEqual(windowMs - RECORDING_SLACK_MS);
    expect(turn.at - held.at).toBeLessThan(windowMs + 2_000);
  });

  test('an aborted wait rejects promptly and leaves the queue, so the next waiter is not delayed', async () => {
    const botName = freshBot();
    const windowMs = 1_000;
    const [a, b, c] = pods(3, { botName, maxConcurrency: 1, windowMs });
    const { queue } = keys(botName, 0);
    const held = await timedWait(a!, 0);
    const abort = new AbortController();
    const aborted = timedWait(b!, 1, abort.signal);
    await queueLength(queue, 1);
    const next = timedWait(c!, 2);
    await queueLength(queue, 2);
    const abortedAt = Date.now();
    abort.abort(new Error('shard destroyed'));
    const gone = await aborted;
    expect((gone.error as Error).message).toBe('shard destroyed');
    expect(gone.at - abortedAt).toBeLessThan(500);
    expect(await raw.zcard(queue)).toBe(1);
    // Had the aborted entry stayed, the next waiter would sit behind it for its alive TTL (3 s).
    const turn = await next;
    expect(turn.error).toBeUndefined();
    expect(turn.at - held.at).toBeGreaterThanOrEqual(windowMs - RECORDING_SLACK_MS);
    expect(turn.at - held.at).toBeLessThan(windowMs + 1_500);
  });

  test('a signal aborted before the wait rejects at once and queues nothing', async () => {
    const botName = freshBot();
    const [pod] = pods(1, { botName, maxConcurrency: 1, windowMs: 300 });
    const result = await timedWait(pod!, 0, AbortSignal.abort(new Error('already gone')));
    expect((result.error as Error).message).toBe('already gone');
    expect(await raw.zcard(keys(botName, 0).queue)).toBe(0);
    expect(await raw.exists(keys(botName, 0).lock)).toBe(0);
  });

  test('a long wait does not pile abort listeners onto the signal', async () => {
    const botName = freshBot();
    const [a, b] = pods(2, { botName, maxConcurrency: 1, windowMs: 1_500 });
    await timedWait(a!, 0);
    const controller = new AbortController();
    const turn = await timedWait(b!, 1, controller.signal); // ~1.5 s of polling
    expect(turn.error).toBeUndefined();
    // A listener left per poll grows with the wait (and Node warns past 10 on one signal).
    expect(getEventListeners(controller.signal, 'abort').length).toBeLessThanOrEqual(1);
  });
});
