// The identify throttler against a real Redis, with one throttler per ioredis connection standing
// for one gateway pod: one identify per bucket per window, buckets independent, waiters served
// in arrival order, and neither a dead waiter nor a dead holder blocks a bucket for long; a Redis
// stall or outage delays waiters but neither strands them nor lets them through unthrottled.
import { getEventListeners } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import {
  identifyBucketKeys,
  RedisIdentifyThrottler,
  type IdentifyThrottlerOptions,
} from '../../bot/gateway/identify/redis-identify-throttler.js';
import { discordBudgetPrefix } from '../../bot/queues/queue-names.js';
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
  // After the outage test some connections may still be between reconnect attempts: those are
  // dropped rather than quit, or their reconnect timer keeps Jest alive.
  await Promise.all(
    connections
      .splice(0)
      .map((c) => (c.status === 'ready' ? c.quit().catch(() => c.disconnect()) : c.disconnect())),
  );
  await redis?.close();
});

function connect(options: RedisOptions = {}): Redis {
  const c = new Redis(redis.url, { maxRetriesPerRequest: null, ...options });
  c.on('error', () => undefined);
  connections.push(c);
  return c;
}

/** A fresh bot's key prefix per test, so no test sees another's queues or locks. */
function freshBot(): string {
  botSeq += 1;
  return discordBudgetPrefix({ namespace: 'default', name: `throttlebot${botSeq}` }, undefined);
}

/** `count` pods, each its own connection and throttler, all on one bot. */
function pods(count: number, options: Omit<IdentifyThrottlerOptions, 'marginMs'>): RedisIdentifyThrottler[] {
  return Array.from(
    { length: count },
    () => new RedisIdentifyThrottler(connect(), { marginMs: 0, ...options }),
  );
}

const keys = identifyBucketKeys;

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
    timeoutMs: 30_000,
    intervalMs: 5,
  });
}

// Date.now() is read in this process after the Redis reply arrives; on two busy shared cores the
// first reading can lag its lock by a stalled event loop's worth (cold CI runs saw 44 ms, and
// 237 ms right after a 2.5 s Redis pause), which shortens the measured gap by as much. Half a
// window still tells a throttled bucket (turns a window apart) from an unthrottled one (turns a
// Redis round trip apart); the tests that measure gaps use windows of 1 s or more, so a lag of
// up to half a second is absorbed.
const minGap = (windowMs: number) => windowMs / 2;

describe('RedisIdentifyThrottler', () => {
  test('turns on one bucket are at least a window apart across pods; other buckets do not wait', async () => {
    const keyPrefix = freshBot();
    const windowMs = 1_000; // measured gaps can shrink by a stalled event loop: see minGap
    const [a, b, c] = pods(3, { keyPrefix, maxConcurrency: 2, windowMs });
    // Shards 0, 2 and 4 share bucket 0 (shard % 2), each on its own pod.
    const turns = await Promise.all([timedWait(a!, 0), timedWait(b!, 2), timedWait(c!, 4)]);
    const times = turns.map((t) => t.at).sort((x, y) => x - y);
    expect(turns.every((t) => t.error === undefined)).toBe(true);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(minGap(windowMs));
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(minGap(windowMs));

    // Bucket 0 busy again for a long window: shard 1 (bucket 1) goes straight through while
    // shard 6 (bucket 0) waits for the window.
    const [d, e, f] = pods(3, { keyPrefix: freshBot(), maxConcurrency: 2, windowMs: 1_500 });
    const first = await timedWait(d!, 0);
    const [other, same] = await Promise.all([timedWait(e!, 1), timedWait(f!, 6)]);
    expect(other.error).toBeUndefined();
    // Ordering, not a stopwatch: the other bucket is served before the same bucket's window ends.
    expect(other.at).toBeLessThan(same.at);
    expect(same.at - first.at).toBeGreaterThanOrEqual(minGap(1_500));
  });

  test('waiters on one bucket are served in arrival order, across pods', async () => {
    const keyPrefix = freshBot();
    const throttlers = pods(3, { keyPrefix, maxConcurrency: 1, windowMs: 300 });
    const { queue, lock } = keys(keyPrefix, 0);
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

  test('waiters sleep until the lock can change hands: a queue behind a held bucket polls Redis a few times a window', async () => {
    const keyPrefix = freshBot();
    const windowMs = 1_000;
    const throttlers = pods(4, { keyPrefix, maxConcurrency: 1, windowMs });
    await raw.set(keys(keyPrefix, 0).lock, 'holder', 'PX', windowMs);
    await raw.config('RESETSTAT');
    const turns = await Promise.all(throttlers.map((t, shardId) => timedWait(t, shardId)));
    expect(turns.every((t) => t.error === undefined)).toBe(true);
    // The waiters wait 1 + 2 + 3 + 4 windows in all. Polling every 50 ms behind the head (as the
    // throttler did) was about 20 polls per waiter and window, some 140 here; sleeping until the
    // lock expires (at most 0.5 s) is 2-3. A loaded machine only makes the polls fewer.
    const stats = await raw.info('commandstats');
    const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls('evalsha') + calls('eval')).toBeLessThan(6 * 10);
  });

  test('the window restarts when the holder gets to send: a holder that sends late pushes the next turn back', async () => {
    const keyPrefix = freshBot();
    const windowMs = 1_000; // measured gaps can shrink by a stalled event loop: see minGap
    const [a, b] = pods(2, { keyPrefix, maxConcurrency: 1, windowMs });
    await a!.waitForIdentify(0, new AbortController().signal);
    // A loaded process: the reply came, but the process gets to its IDENTIFY 0.7 s later.
    const blockedUntil = Date.now() + 700;
    while (Date.now() < blockedUntil);
    const sentAt = Date.now();
    // Counted from the lock alone the next turn would come 0.3 s after this IDENTIFY.
    const next = await timedWait(b!, 1);
    expect(next.error).toBeUndefined();
    expect(next.at - sentAt).toBeGreaterThanOrEqual(minGap(windowMs) + 200);
  });

  test('a holder that sends after its lock expired, nobody having taken it, holds the bucket a window from its send', async () => {
    const keyPrefix = freshBot();
    const windowMs = 1_000; // measured gaps can shrink by a stalled event loop: see minGap
    const [a, b] = pods(2, { keyPrefix, maxConcurrency: 1, windowMs });
    await a!.waitForIdentify(0, new AbortController().signal);
    // A stall longer than the window: the lock is gone by the time the IDENTIFY goes out.
    const blockedUntil = Date.now() + 1_500;
    while (Date.now() < blockedUntil);
    const sentAt = Date.now();
    // Nobody polls the bucket before the holder's restart reaches Redis.
    await waitUntil('the lock taken again', async () => (await raw.exists(keys(keyPrefix, 0).lock)) === 1, {
      intervalMs: 5,
    });
    const next = await timedWait(b!, 1);
    expect(next.error).toBeUndefined();
    expect(next.at - sentAt).toBeGreaterThanOrEqual(minGap(windowMs));
  });

  test("a holder whose grant reaches it after the lock expired, the next waiter polling on time, does not identify in that waiter's window", async () => {
    const keyPrefix = freshBot();
    const windowMs = 1_000; // measured gaps can shrink by a stalled event loop: see minGap
    const [a, b] = pods(2, { keyPrefix, maxConcurrency: 1, windowMs });
    // The scripts loaded, so A's next call is one command whose reply can be held back.
    await a!.waitForIdentify(0, new AbortController().signal);
    await waitUntil(
      'the warm-up lock expired',
      async () => (await raw.exists(keys(keyPrefix, 0).lock)) === 0,
      {
        intervalMs: 20,
      },
    );
    // A's turn is granted in Redis, but A reads the reply only after its lock has expired (a
    // descheduled process): its socket is not read meanwhile.
    const stream = (a as unknown as { redis: Redis }).redis.stream;
    const late = timedWait(a!, 0);
    stream.pause();
    await waitUntil(
      'A holds the lock',
      async () => (await raw.get(keys(keyPrefix, 0).lock))?.startsWith('0:') === true,
      {
        intervalMs: 5,
      },
    );
    // B polls on time: it takes the bucket as A's lock expires.
    const onTime = await timedWait(b!, 1);
    expect(onTime.error).toBeUndefined();
    stream.resume();
    const stalled = await late;
    expect(stalled.error).toBeUndefined();
    expect(stalled.at - onTime.at).toBeGreaterThanOrEqual(minGap(windowMs));
  });

  test('a waiter that died in the queue blocks the bucket only until its alive entry expires', async () => {
    const keyPrefix = freshBot();
    const [pod] = pods(1, { keyPrefix, maxConcurrency: 1, windowMs: 300 });
    const { queue, alive } = keys(keyPrefix, 0);
    const aliveTtlMs = 800;
    // A waiter from a pod that crashed: ahead in the queue, alive entry never refreshed.
    const [seconds, micros] = await raw.time();
    const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    await raw.zadd(queue, Date.now() - 1_000, 'dead:1');
    await raw.zadd(alive, redisNow + aliveTtlMs, 'dead:1');
    const turn = await timedWait(pod!, 0);
    expect(turn.error).toBeUndefined();
    // It respected the dead waiter while its key lived (it was first), then skipped it.
    expect(turn.at - turn.started).toBeGreaterThanOrEqual(aliveTtlMs - 200);
    // Not forever (which is what a dead waiter that is never skipped costs); the loose bound
    // only has to hold on a loaded machine.
    expect(turn.at - turn.started).toBeLessThan(aliveTtlMs + 15_000);
    expect(await raw.zscore(queue, 'dead:1')).toBeNull();
  });

  test('a holder that died right after taking the lock blocks the bucket for one window, not forever', async () => {
    const keyPrefix = freshBot();
    const windowMs = 1_000; // measured gaps can shrink by a stalled event loop: see minGap
    const dyingConnection = connect();
    const dying = new RedisIdentifyThrottler(dyingConnection, {
      keyPrefix,
      maxConcurrency: 1,
      windowMs,
      marginMs: 0,
    });
    const [survivor] = pods(1, { keyPrefix, maxConcurrency: 1, windowMs });
    const held = await timedWait(dying, 0);
    dyingConnection.disconnect(); // the pod is gone; nothing will ever release the lock
    const lockTtl = await raw.pttl(keys(keyPrefix, 0).lock);
    expect(lockTtl).toBeGreaterThan(0);
    expect(lockTtl).toBeLessThanOrEqual(windowMs);
    const turn = await timedWait(survivor!, 0);
    expect(turn.error).toBeUndefined();
    expect(turn.at - held.at).toBeGreaterThanOrEqual(minGap(windowMs));
    // Not forever (a lock nobody releases); loose, for a loaded machine.
    expect(turn.at - held.at).toBeLessThan(windowMs + 15_000);
  });

  test('an aborted wait rejects promptly and leaves the queue, so the next waiter is not delayed', async () => {
    const keyPrefix = freshBot();
    const windowMs = 1_000;
    // A long alive TTL: had the aborted entry stayed, the next waiter would sit behind it for
    // 20 s, far from the 1 s window, so the bound below can be loose.
    const [a, b, c] = pods(3, { keyPrefix, maxConcurrency: 1, windowMs, aliveTtlMs: 20_000 });
    const { queue } = keys(keyPrefix, 0);
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
    expect(gone.at - abortedAt).toBeLessThan(2_000); // without waiting for a poll or a turn
    expect(await raw.zcard(queue)).toBe(1);
    // Had the aborted entry stayed, the next waiter would sit behind it for its alive TTL (3 s).
    const turn = await next;
    expect(turn.error).toBeUndefined();
    expect(turn.at - held.at).toBeGreaterThanOrEqual(minGap(windowMs));
    expect(turn.at - held.at).toBeLessThan(windowMs + 10_000);
  });

  test('a signal aborted before the wait rejects at once and queues nothing', async () => {
    const keyPrefix = freshBot();
    const [pod] = pods(1, { keyPrefix, maxConcurrency: 1, windowMs: 300 });
    const result = await timedWait(pod!, 0, AbortSignal.abort(new Error('already gone')));
    expect((result.error as Error).message).toBe('already gone');
    expect(await raw.zcard(keys(keyPrefix, 0).queue)).toBe(0);
    expect(await raw.exists(keys(keyPrefix, 0).lock)).toBe(0);
  });

  test('a long wait does not pile abort listeners onto the signal', async () => {
    const keyPrefix = freshBot();
    const [a, b] = pods(2, { keyPrefix, maxConcurrency: 1, windowMs: 1_500 });
    await timedWait(a!, 0);
    const controller = new AbortController();
    const turn = await timedWait(b!, 1, controller.signal); // ~1.5 s of polling
    expect(turn.error).toBeUndefined();
    // A listener left per poll grows with the wait (and Node warns past 10 on one signal).
    expect(getEventListeners(controller.signal, 'abort').length).toBeLessThanOrEqual(1);
  });

  test('after Redis pauses longer than the alive TTL, queued waiters are all served, first arrival first', async () => {
    const keyPrefix = freshBot();
    const aliveTtlMs = 1_000;
    const windowMs = 1_000; // measured gaps can shrink by a stalled event loop: see minGap
    const [w, x] = pods(2, { keyPrefix, maxConcurrency: 1, windowMs, aliveTtlMs });
    const { queue, lock } = keys(keyPrefix, 0);
    // The holder's lock runs out during the pause, so after it whichever poll runs first could
    // take the bucket: only the first arrival may.
    await raw.set(lock, 'holder', 'PX', 1_000);
    const first = timedWait(w!, 0);
    await queueLength(queue, 1);
    await new Promise((r) => setTimeout(r, 5));
    const second = timedWait(x!, 1);
    await queueLength(queue, 2);
    const pauser = connect();
    const pauseMs = 2_500; // both alive keys expire while every client is paused
    // Read before the pause starts, so a late reading cannot move it past the turns it bounds.
    const pausedAt = Date.now();
    await pauser.call('CLIENT', 'PAUSE', String(pauseMs), 'ALL');
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<'stuck'>((r) => (timer = setTimeout(() => r('stuck'), pauseMs + 8_000)));
    const turns = await Promise.race([Promise.all([first, second]), stuck]);
    clearTimeout(timer);
    expect(turns).not.toBe('stuck');
    const [a, b] = turns as Awaited<typeof first>[];
    expect(a!.error).toBeUndefined();
    expect(b!.error).toBeUndefined();
    expect(a!.at).toBeGreaterThanOrEqual(pausedAt + pauseMs - 20); // 20 ms: Redis' timer granularity
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(minGap(windowMs));
    expect(await raw.zcard(queue)).toBe(0);
  });

  test('a Redis outage does not reject a wait: it is served once Redis is back; an abort during it still rejects promptly', async () => {
    const keyPrefix = freshBot();
    const windowMs = 300;
    const options = { keyPrefix, maxConcurrency: 2, windowMs, marginMs: 0 };
    // As the gateway cluster connects (commands wait offline for the reconnect) ...
    const queued = new RedisIdentifyThrottler(connect(), options);
    // ... and a connection whose commands fail at once while Redis is down.
    const failingErrors: Error[] = [];
    const failingConnection = connect({ enableOfflineQueue: false });
    await waitUntil('failing connection ready', async () => failingConnection.status === 'ready', {
      timeoutMs: 30_000,
      intervalMs: 10,
    });
    const failing = new RedisIdentifyThrottler(failingConnection, {
      ...options,
      onError: (err) => failingErrors.push(err),
    });
    const bucket0 = keys(keyPrefix, 0);
    const bucket1 = keys(keyPrefix, 1);
    await raw.set(bucket0.lock, 'holder', 'PX', 60_000);
    await raw.set(bucket1.lock, 'holder', 'PX', 60_000);
    const waiting = timedWait(queued, 0);
    const retrying = timedWait(failing, 1);
    const abort = new AbortController();
    const aborted = timedWait(queued, 2, abort.signal);
    await queueLength(bucket0.queue, 2);
    await queueLength(bucket1.queue, 1);

    await redis.stop(); // not persistent: the locks are gone when it comes back
    const stoppedAt = Date.now();
    await new Promise((r) => setTimeout(r, 1_500));
    const abortedAt = Date.now();
    abort.abort(new Error('shard destroyed'));
    const gone = await aborted;
    expect((gone.error as Error).message).toBe('shard destroyed');
    expect(gone.at - abortedAt).toBeLessThan(2_000); // without waiting for a poll or a turn
    await new Promise((r) => setTimeout(r, 1_000));
    let settled = false;
    void Promise.all([waiting, retrying]).then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    expect(failingErrors.length).toBeGreaterThan(0);
    const startedAt = Date.now();
    await redis.start();

    const [served, retried] = await Promise.all([waiting, retrying]);
    expect(served.error).toBeUndefined();
    expect(retried.error).toBeUndefined();
    expect(served.at).toBeGreaterThanOrEqual(startedAt);
    expect(retried.at).toBeGreaterThanOrEqual(startedAt);
    // Backing off (250 ms doubling to 2 s), not spinning on the failing connection.
    const outageMs = retried.at - stoppedAt;
    expect(failingErrors.length).toBeLessThanOrEqual(3 + outageMs / 500);
  });
});
