// Reads a bot's BullMQ backlog straight from its Redis (or Redis Cluster): one connection per Redis URL, shared by
// the bots that use it (their keys differ by prefix), kept between reconciles, and closed when
// the last of those bots goes away or moves to another URL. A connection per bot cost a client,
// its buffers and its reconnect timer a thousand times over for bots that share one Redis. Key layout of
// bullmq 6.7: `<prefix>:<queue>:wait` (list), `:prioritized` (zset), `:delayed` (zset whose
// score is dueTimestampMs * 0x1000 + a counter), `:meta` (hash; `paused` while paused).
import { createHash } from 'node:crypto';
import { connectRedis, type RedisClient } from '../../bot/configuration/redis-connection.js';
import { parseRedisTarget, RedisTargetError } from '../../bot/configuration/redis-target.js';
import { readEventPartitions } from '../../bot/queues/partition-high-water.js';
import { botQueues, LEGACY_QUEUES, legacyQueuePrefix, type BotRef } from '../../bot/queues/queue-names.js';

export interface QueueBacklog {
  queue: string;
  waiting: number;
  prioritized: number;
  /** Delayed jobs whose time has come (BullMQ promotes them on a worker's next fetch). */
  dueDelayed: number;
  paused: boolean;
  /** An event partition other than 0 (spec.redis.eventPartitions). */
  partition?: number;
  /** A queue of the release before namespaced keys (read with `legacyKeys`). */
  oldKeys?: boolean;
}

/** Jobs a worker could start now; a paused queue has none (more workers would not help). */
export function backlogOf(queues: readonly QueueBacklog[]): number {
  return queues.reduce((n, q) => n + (q.paused ? 0 : q.waiting + q.prioritized + q.dueDelayed), 0);
}

/** The highest delayed-set score of a job due at `nowMs` (BullMQ's own promotion bound). */
export const dueDelayedMaxScore = (nowMs: number) => (nowMs + 1) * 0x1000 - 1;

/** A queue's keys, in the order BACKLOG_SCRIPT reads them. */
const queueKeys = (prefix: string, queue: string) =>
  ['wait', 'prioritized', 'delayed', 'meta'].map((suffix) => `${prefix}:${queue}:${suffix}`);

/**
 * Per queue (four KEYS each): waiting, prioritized, delayed due by ARGV[1], paused (1/0). One
 * command per read instead of four per queue: every 10 s for every bot, ioredis's command
 * objects and their timeout timers outlived young-generation GCs and filled the old generation
 * with garbage (docs/benchmarks.md, "Where the memory went").
 */
const BACKLOG_SCRIPT = `local out = {}
for i = 1, #KEYS, 4 do
  out[#out + 1] = redis.call('LLEN', KEYS[i])
  out[#out + 1] = redis.call('ZCARD', KEYS[i + 1])
  out[#out + 1] = redis.call('ZCOUNT', KEYS[i + 2], '-inf', ARGV[1])
  out[#out + 1] = redis.call('HEXISTS', KEYS[i + 3], 'paused')
end
return out`;

/** Redis could not be asked; the message names the cause, never the URL (it may hold a password). */
export class RedisUnavailableError extends Error {}

export interface BacklogReaderOptions {
  /** How long a read waits for a (re)connection and for its answer. */
  timeoutMs?: number;
}

interface Connection {
  urlHash: string;
  client: RedisClient;
  lastError?: string;
  /** Keys of the bots that read through it. */
  users: Set<string>;
}

export class BacklogReader {
  /** By URL hash. */
  private readonly connections = new Map<string, Connection>();
  /** Bot key → the URL hash it reads through. */
  private readonly botUrl = new Map<string, string>();
  private readonly timeoutMs: number;

  constructor(options: BacklogReaderOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 2_000;
  }

  /**
   * Per-queue counts for one bot, each of its `partitions` event partitions a queue of its own
   * (and those up to the most any gateway of the bot wrote, partition-high-water.ts);
   * with `legacyKeys` also those of its queues under the keys of releases before namespaced keys,
   * which its old gateway pods may still fill. Throws RedisUnavailableError when Redis does not
   * answer.
   */
  async read(
    key: string,
    bot: BotRef,
    redisUrl: string,
    nowMs = Date.now(),
    legacyKeys = false,
    partitions = 1,
  ): Promise<QueueBacklog[]> {
    const conn = this.connection(key, redisUrl);
    await this.ready(conn);
    // Partitions a gateway wrote beyond the spec's count (it was lowered) still hold jobs the
    // workers drain: counted, so the workers do not scale to zero while they wait.
    const highWater = await this.ask(readEventPartitions(conn.client, bot));
    const queues = [
      ...botQueues(bot, Math.max(partitions, highWater)).map((q) => ({ ...q, oldKeys: false })),
      ...(legacyKeys
        ? LEGACY_QUEUES.map((queue) => ({
            queue,
            prefix: legacyQueuePrefix(bot.name),
            partition: 0,
            oldKeys: true,
          }))
        : []),
    ];
    // One script per prefix: each prefix is one hash slot, and on a Redis Cluster a script's
    // keys must share a slot (the old keys' slot and each partition's may live on another node).
    // Each answer is matched to its queues by prefix, whatever order the queues are listed in.
    const keysOf = new Map<string, string[]>();
    const offsets = queues.map(({ prefix, queue }) => {
      const keys = keysOf.get(prefix) ?? keysOf.set(prefix, []).get(prefix)!;
      const offset = keys.length;
      keys.push(...queueKeys(prefix, queue));
      return offset;
    });
    const answers = await this.ask(
      Promise.all(
        [...keysOf.values()].map((keys) =>
          conn.client.eval(BACKLOG_SCRIPT, keys.length, ...keys, dueDelayedMaxScore(nowMs)),
        ),
      ),
    );
    const counts = new Map(
      [...keysOf.keys()].map((prefix, i) => [prefix, (answers[i] as unknown[]).map(Number)]),
    );
    return queues.map(({ queue, prefix, partition, oldKeys }, q) => {
      const n = (i: number) => counts.get(prefix)![offsets[q]! + i]!;
      return {
        queue,
        waiting: n(0),
        prioritized: n(1),
        dueDelayed: n(2),
        paused: n(3) === 1,
        ...(partition > 0 ? { partition } : {}),
        ...(oldKeys ? { oldKeys } : {}),
      };
    });
  }

  /** `answer`, its failure as a RedisUnavailableError. */
  private async ask<T>(answer: Promise<T>): Promise<T> {
    try {
      return await answer;
    } catch (err) {
      throw new RedisUnavailableError(describeRedisError(err));
    }
  }

  /** The bot no longer reads (deleted, or not autoscaled by us); its Redis's last user closes it. */
  forget(key: string): void {
    const urlHash = this.botUrl.get(key);
    if (urlHash === undefined) return;
    this.botUrl.delete(key);
    const conn = this.connections.get(urlHash);
    conn?.users.delete(key);
    if (conn && conn.users.size === 0) {
      this.connections.delete(urlHash);
      conn.client.disconnect();
    }
  }

  close(): void {
    for (const key of [...this.botUrl.keys()]) this.forget(key);
  }

  /** Open connections (for tests and the benchmark). */
  size(): number {
    return this.connections.size;
  }

  private connection(key: string, url: string): Connection {
    // Compared by hash so the URL (and its password) is not kept around for nothing.
    const urlHash = createHash('sha256').update(url).digest('hex');
    if (this.botUrl.get(key) !== urlHash) this.forget(key);
    const existing = this.connections.get(urlHash);
    if (existing) {
      existing.users.add(key);
      this.botUrl.set(key, urlHash);
      return existing;
    }
    let target;
    try {
      target = parseRedisTarget(url, 'the Redis URL');
    } catch (err) {
      if (err instanceof RedisTargetError) throw new RedisUnavailableError(err.message);
      throw err;
    }
    const client = connectRedis(target, {
      lazyConnect: true,
      // Fail at once while disconnected instead of queueing: the reconcile must not wait.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: this.timeoutMs,
      commandTimeout: this.timeoutMs,
      // Keep trying in the background, at most every 5 s.
      retryStrategy: (times: number) => Math.min(5_000, 200 * times),
      connectionName: 'shardwarden-operator-autoscaler',
    });
    const conn: Connection = { urlHash, client, users: new Set([key]) };
    client.on('error', (err: unknown) => {
      conn.lastError = describeRedisError(err);
    });
    client.on('ready', () => {
      conn.lastError = undefined;
    });
    client.connect().catch(() => undefined);
    this.connections.set(urlHash, conn);
    this.botUrl.set(key, urlHash);
    return conn;
  }

  private async ready(conn: Connection): Promise<void> {
    if (conn.client.status === 'ready') return;
    // Known to be down: say so at once rather than hold up the reconcile; ioredis keeps retrying.
    if (conn.lastError) throw new RedisUnavailableError(conn.lastError);
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), this.timeoutMs);
      const onReady = () => done(true);
      function done(result: boolean) {
        clearTimeout(timer);
        conn.client.off('ready', onReady);
        resolve(result);
      }
      conn.client.once('ready', onReady);
    });
    if (!ok) throw new RedisUnavailableError(conn.lastError ?? `not connected (${conn.client.status})`);
  }
}

/** An error code or a short cause; ioredis messages can carry host and port, never the URL. */
function describeRedisError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e?.code) return e.code;
  const msg = e?.message ?? String(err);
  if (/NOAUTH|WRONGPASS|invalid password/i.test(msg)) return 'authentication failed';
  if (/timed? ?out/i.test(msg)) return 'timed out';
  return msg.replace(/\S+:\/\/\S+/g, '<url>').slice(0, 120);
}
