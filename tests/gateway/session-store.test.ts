// The session store against a real Redis: quiet shards' sessions are kept alive while the store
// runs and written at shutdown, a Redis outage does not pile writes up in ioredis, a shutdown
// flush gives up after its timeout, and new/cleared sessions are written at once.
import { Redis } from 'ioredis';
import { RedisSessionStore, type SessionInfo } from '../../bot/gateway/sessions/redis-session-store.js';
import { queuePrefix } from '../../bot/queues/queue-names.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';

const SHARDS = 4;
let redis: RedisServer;
let raw: Redis;
const connections: Redis[] = [];
const stores: RedisSessionStore[] = [];
let botSeq = 0;

beforeAll(async () => {
  redis = await startRedis();
  raw = connect();
});
afterEach(() => {
  for (const store of stores.splice(0)) store.stop();
});
afterAll(async () => {
  connections.splice(0).forEach((c) => c.disconnect());
  await redis?.close();
});

function connect(): Redis {
  // As the gateway cluster connects: commands wait out an outage instead of failing.
  const c = new Redis(redis.url, { maxRetriesPerRequest: null });
  c.on('error', () => undefined);
  connections.push(c);
  return c;
}

interface Setup {
  bot: string;
  conn: Redis;
  store: RedisSessionStore;
}

function setup(
  options: {
    flushIntervalMs?: number;
    ttlSeconds?: number;
    safe?: (shard: number, seq: number) => number;
  } = {},
): Setup {
  botSeq += 1;
  const bot = queuePrefix({ namespace: 'default', name: `sessionbot${botSeq}` });
  const conn = connect();
  const store = new RedisSessionStore(
    conn,
    bot,
    SHARDS,
    options.flushIntervalMs ?? 50,
    options.ttlSeconds ?? 2,
    options.safe,
  );
  stores.push(store);
  return { bot, conn, store };
}

/** Where the store keeps a shard's session under the bot's key prefix. */
const sessionKey = (prefix: string, shardId: number) => `${prefix}:session:${SHARDS}:${shardId}`;

function session(shardId: number, sequence: number, sessionId = `s${shardId}`): SessionInfo {
  return { sessionId, sequence, resumeURL: 'wss://resume.example', shardCount: SHARDS, shardId };
}

async function stored(bot: string, shardId: number): Promise<SessionInfo | null> {
  const value = await raw.get(sessionKey(bot, shardId));
  return value ? (JSON.parse(value) as SessionInfo) : null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function offlineQueued(conn: Redis): number {
  // ioredis keeps commands issued while disconnected in `offlineQueue` (a Deque).
  return (conn as unknown as { offlineQueue: { length: number } }).offlineQueue.length;
}

test("a quiet shard's session outlives the TTL while the store runs, and expires after stop()", async () => {
  const { bot, store } = setup({ ttlSeconds: 2 });
  store.update(0, session(0, 5));
  await waitUntil('session written', async () => (await stored(bot, 0)) !== null, { timeoutMs: 30_000 });

  // Well past the 2 s TTL with no update at all: the refresh keeps the key.
  await sleep(3_500);
  expect(await stored(bot, 0)).toEqual(session(0, 5));
  expect(await raw.ttl(sessionKey(bot, 0))).toBeGreaterThan(0);

  store.stop();
  await waitUntil('the session expired', async () => (await stored(bot, 0)) === null, { timeoutMs: 30_000 });
});

test('a shutdown flush with all writes quiet sessions (read or updated earlier) at the safe sequence', async () => {
  const { bot, store } = setup({ ttlSeconds: 60, safe: (_shard, seq) => seq - 10 });
  await raw.set(sessionKey(bot, 0), JSON.stringify(session(0, 40)));
  expect(await store.retrieve(0)).toEqual({ info: session(0, 40), fromRedis: true });
  store.update(1, session(1, 100));
  await waitUntil('shard 1 written', async () => (await stored(bot, 1))?.sequence === 90, {
    timeoutMs: 30_000,
  });
  store.stop();

  // Both keys gone (expired, or evicted): nothing is dirty, so a plain flush writes nothing.
  await raw.del(sessionKey(bot, 0), sessionKey(bot, 1));
  await store.flush();
  expect(await stored(bot, 0)).toBeNull();
  expect(await stored(bot, 1)).toBeNull();

  await store.flush({ all: true, timeoutMs: 5_000 });
  expect(await stored(bot, 0)).toEqual(session(0, 30));
  expect(await stored(bot, 1)).toEqual(session(1, 90));
  expect(await stored(bot, 2)).toBeNull(); // never seen here: not written
  const ttl = await raw.ttl(sessionKey(bot, 1));
  expect(ttl).toBeGreaterThan(50);
});

describe('with Redis stopped', () => {
  afterEach(async () => {
    await redis.start();
  });

  test('updates do not pile writes up in ioredis, and the newest sequences land once Redis is back', async () => {
    const { bot, conn, store } = setup({ flushIntervalMs: 50, ttlSeconds: 3 });
    for (let shard = 0; shard < SHARDS; shard++) store.update(shard, session(shard, 1));
    await waitUntil('sessions written', async () => (await stored(bot, SHARDS - 1)) !== null, {
      timeoutMs: 30_000,
    });

    await redis.stop();
    await waitUntil('ioredis notices', async () => conn.status !== 'ready', {
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    let seq = 1;
    let maxQueued = 0;
    const until = Date.now() + 2_000; // 40 flush intervals, 2 refreshes
    while (Date.now() < until) {
      seq += 1;
      for (let shard = 0; shard < SHARDS; shard++) store.update(shard, session(shard, seq));
      maxQueued = Math.max(maxQueued, offlineQueued(conn));
      await sleep(10);
    }
    // One MULTI for all shards is MULTI + SHARDS SETs + EXEC; at most one is ever in flight.
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(2 * (SHARDS + 2));

    await redis.start();
    await waitUntil(
      'newest sequences stored',
      async () => {
        for (let shard = 0; shard < SHARDS; shard++)
          if ((await stored(bot, shard))?.sequence !== seq) return false;
        return true;
      },
      { timeoutMs: 30_000 },
    );
  });

  test('a shutdown flush gives up after its timeout instead of hanging', async () => {
    const { bot, conn, store } = setup({ flushIntervalMs: 50, ttlSeconds: 60 });
    store.update(0, session(0, 1));
    await waitUntil('session written', async () => (await stored(bot, 0)) !== null, { timeoutMs: 30_000 });

    await redis.stop();
    await waitUntil('ioredis notices', async () => conn.status !== 'ready', {
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    store.update(0, session(0, 2));
    // The coalesced write is now stuck in ioredis's offline queue.
    await waitUntil('the write queued offline', async () => offlineQueued(conn) > 0, {
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    store.stop();
    const started = Date.now();
    await expect(store.flush({ all: true, timeoutMs: 300 })).rejects.toThrow(/timeoutMs=300/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

test('a new session id or a cleared session is written at once; sequence updates wait for the interval', async () => {
  const { bot, store } = setup({ flushIntervalMs: 60_000, ttlSeconds: 60 });
  store.update(0, session(0, 1, 'first'));
  await waitUntil('new session written', async () => (await stored(bot, 0))?.sessionId === 'first', {
    timeoutMs: 30_000,
  });

  store.update(0, session(0, 2, 'first'));
  await sleep(300);
  expect((await stored(bot, 0))?.sequence).toBe(1);

  store.update(0, session(0, 3, 'second'));
  await waitUntil('next session written', async () => (await stored(bot, 0))?.sessionId === 'second', {
    timeoutMs: 30_000,
  });
  expect((await stored(bot, 0))?.sequence).toBe(3);

  store.update(0, null);
  await waitUntil('session cleared', async () => (await stored(bot, 0)) === null, { timeoutMs: 30_000 });
});

test('retrieve() reads Redis only on the first ask per shard', async () => {
  const { bot, store } = setup({ ttlSeconds: 60 });
  await raw.set(sessionKey(bot, 2), JSON.stringify(session(2, 7)));
  expect(await store.retrieve(2)).toEqual({ info: session(2, 7), fromRedis: true });
  expect(await store.retrieve(3)).toEqual({ info: null, fromRedis: true });

  await raw.set(sessionKey(bot, 2), JSON.stringify(session(2, 99)));
  await raw.set(sessionKey(bot, 3), JSON.stringify(session(3, 99)));
  expect(await store.retrieve(2)).toEqual({ info: session(2, 7), fromRedis: false });
  expect(await store.retrieve(3)).toEqual({ info: null, fromRedis: false });

  store.update(2, session(2, 8));
  expect(await store.retrieve(2)).toEqual({ info: session(2, 8), fromRedis: false });
});

test('a session read from Redis (a RESUME after a restart) is written back with a full TTL and kept alive, with or without dispatches', async () => {
  const { bot, store } = setup({ ttlSeconds: 2 });
  // Shorter than the store's TTL: only the store's refresh can lift it above 1.5 s.
  await raw.set(sessionKey(bot, 3), JSON.stringify(session(3, 4)), 'PX', 1_500);
  expect(await store.retrieve(3)).toEqual({ info: session(3, 4), fromRedis: true });
  await waitUntil('the session refreshed', async () => (await raw.pttl(sessionKey(bot, 3))) > 1_600, {
    timeoutMs: 30_000,
  });
  expect(await stored(bot, 3)).toEqual(session(3, 4));
});
