// Identify throttling across every gateway pod of a bot, through Redis. Discord allows one
// IDENTIFY per bucket (shard_id % max_concurrency) per 5 s window. Waiters queue per bucket in
// arrival order (fair); a waiter keeps a short-lived "alive" entry while it waits, so one that
// dies is skipped instead of blocking the bucket; the bucket lock itself expires after the
// window, so a holder that dies right after taking it cannot block anyone either.
//
// Every poll re-asserts its waiter (alive entry refreshed, queue entry put back with its original
// arrival score if someone removed it), so a Redis stall longer than the alive TTL cannot strand
// a live waiter. When Redis itself stalled (no poll on the bucket for half the alive TTL), dead
// waiters are kept for a grace period so the live ones can re-assert before anyone skips them.
//
// The window is counted again from when the holder has sent its IDENTIFY (restartWindow); a turn
// whose grant arrived more than a window after it was asked for is confirmed in Redis first
// (confirmTurn); a waiter sleeps until the lock can change hands rather than polling (pollDelayMs).
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../../configuration/redis-connection.js';
import { within } from '../../timing/within.js';

// Every key is declared (KEYS), none built inside the script: a Redis Cluster routes the call by
// them. Waiters' alive times are one sorted set per bucket (member → when it stops being alive,
// by Redis's clock), not a key per waiter, so the head's can be read without naming its key.
const TAKE_TURN = `
local queue, lock, lastPoll, grace, alive = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local me, windowMs = ARGV[1], tonumber(ARGV[2])
local arrival, aliveTtlMs = ARGV[3], tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', alive, now + aliveTtlMs, me)
redis.call('ZREMRANGEBYSCORE', alive, '-inf', now)
redis.call('PEXPIRE', alive, aliveTtlMs * 10)
redis.call('ZADD', queue, 'NX', arrival, me)
local last = tonumber(redis.call('GET', lastPoll))
redis.call('SET', lastPoll, now, 'PX', aliveTtlMs * 10)
local half = math.floor(aliveTtlMs / 2)
if last and now - last > half then
  redis.call('SET', grace, '1', 'PX', half)
end
if redis.call('EXISTS', grace) == 0 then
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head or redis.call('ZSCORE', alive, head) then break end
    redis.call('ZREM', queue, head)
  end
end
local ttl = math.max(redis.call('PTTL', lock), 0)
if redis.call('ZRANGE', queue, 0, 0)[1] ~= me then return -1 - ttl end
if ttl > 0 then return ttl end
redis.call('SET', lock, me, 'PX', windowMs)
redis.call('ZREM', queue, me)
redis.call('ZREM', alive, me)
return 0
`;

// The window restarted from now, if the lock is still this holder's or nobody's (it expired
// before the holder got to send, and nobody took it meanwhile): see restartWindow.
const RESTART_WINDOW = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
`;

export interface IdentifyThrottlerOptions {
  /** Whose buckets: the Discord application's (discordBudgetPrefix), shared by its bots. */
  keyPrefix: string;
  maxConcurrency: number;
  windowMs: number;
  /** Added to the window: the lock is taken a moment before the IDENTIFY is actually sent. */
  marginMs?: number;
  /** How long a waiter that stopped polling (pod gone) holds its place. Default 3000. */
  aliveTtlMs?: number;
  onWait?: (shardId: number, waitedMs: number) => void;
  /** A Redis error during a wait; the wait keeps going and retries with backoff. */
  onError?: (err: Error) => void;
}

/** The keys of one identify bucket of `keyPrefix` (discordBudgetPrefix: one hash slot). */
export function identifyBucketKeys(keyPrefix: string, bucket: number) {
  const key = (part: string) => [keyPrefix, 'identify', bucket, part].join(':');
  return {
    /** Waiters by arrival. */
    queue: key('queue'),
    /** Held for a window by the waiter whose turn it is. */
    lock: key('lock'),
    lastPoll: key('lastpoll'),
    grace: key('grace'),
    /** Waiter → when it stops being alive (ms, Redis's clock). */
    alive: key('alive'),
  };
}

type TakeTurn = (...args: (string | number)[]) => Promise<number>;
type RestartWindow = (lock: string, me: string, windowMs: number) => Promise<number>;

/** The spacing of a bucket's turns beyond Discord's window, for clock skew and transit. */
export const DEFAULT_IDENTIFY_MARGIN_MS = 250;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 2_000;
/** How long an aborted wait waits for its queue entry to be removed before rejecting. */
const CLEANUP_WAIT_MS = 1_000;

export class RedisIdentifyThrottler {
  private readonly aliveTtlMs: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly options: IdentifyThrottlerOptions,
  ) {
    this.aliveTtlMs = options.aliveTtlMs ?? 3_000;
    if (!Number.isInteger(this.aliveTtlMs) || this.aliveTtlMs < 100)
      throw new Error(`aliveTtlMs must be an integer of at least 100, got ${String(options.aliveTtlMs)}`);
    redis.defineCommand('shardwardenTakeIdentifyTurn', { numberOfKeys: 5, lua: TAKE_TURN });
    redis.defineCommand('shardwardenRestartIdentifyWindow', { numberOfKeys: 1, lua: RESTART_WINDOW });
  }

  /**
   * Resolves when this shard may IDENTIFY. Redis errors never reject it (an identify let through
   * unthrottled would be worse than a late one): it retries until served or `signal` aborts.
   */
  async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
    const { keyPrefix, maxConcurrency, windowMs, marginMs = DEFAULT_IDENTIFY_MARGIN_MS } = this.options;
    if (signal.aborted) throw abortReason(signal);
    const { queue, lock, lastPoll, grace, alive } = identifyBucketKeys(keyPrefix, shardId % maxConcurrency);
    const me = `${shardId}:${randomUUID()}`;
    const started = Date.now();
    // The place in line, kept for the whole wait: a poll that finds itself removed re-adds it.
    const arrival = started;
    const takeTurn = (this.redis as unknown as { shardwardenTakeIdentifyTurn: TakeTurn })
      .shardwardenTakeIdentifyTurn;
    let retryMs = RETRY_MIN_MS;
    // Served: the script took this waiter out of the queue itself, nothing to clean up.
    let served = false;
    try {
      for (;;) {
        if (signal.aborted) throw abortReason(signal);
        let r: number;
        // The grant comes after this, so the lock is this waiter's for a window from here.
        const polledAt = Date.now();
        try {
          // Raced with the signal: with an offline queue, a command waits for the reconnect.
          r = Number(
            await untilAborted(
              takeTurn.call(
                this.redis,
                queue,
                lock,
                lastPoll,
                grace,
                alive,
                me,
                windowMs + marginMs,
                arrival,
                this.aliveTtlMs,
              ),
              signal,
            ),
          );
        } catch (err) {
          if (signal.aborted) throw abortReason(signal);
          this.options.onError?.(err instanceof Error ? err : new Error(String(err)));
          await sleep(retryMs, signal);
          retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
          continue;
        }
        retryMs = RETRY_MIN_MS;
        if (r === 0) {
          // The script took this waiter out of the queue: a confirm that fails puts it back
          // (the next poll, same arrival), and an abort meanwhile has nothing to clean up.
          served = true;
          if (
            Date.now() - polledAt >= windowMs &&
            !(await this.confirmTurn(lock, me, windowMs, marginMs, signal))
          ) {
            served = false;
            continue;
          }
          // Queued before anything onWait queues: nothing else runs between the send and it.
          setImmediate(() => this.restartWindow(lock, me, windowMs + marginMs));
          this.options.onWait?.(shardId, Date.now() - started);
          return;
        }
        await sleep(pollDelayMs(r, this.aliveTtlMs), signal);
      }
    } finally {
      if (!served) await this.leaveQueue(queue, alive, me);
    }
  }

  /**
   * Called once the IDENTIFY this turn was for has been sent (the caller sends it as soon as the
   * wait resolves, before this process turns to anything queued with setImmediate): the lock was
   * taken when Redis ran the script, and a process that gets its reply late (a loaded machine,
   * a stalled event loop) sends late, so a window counted from the lock alone let the next
   * holder's IDENTIFY reach Discord less than a window after this one (seen at a load average
   * of 40: IDENTIFYs refused for the window). Counted again from here, the next turn comes a
   * window after this IDENTIFY went out; if the lock already expired (a stall longer than the
   * window) and nobody took it, it is taken again for the window. Best effort: if Redis does
   * not take it, the lock still expires a window after it was taken.
   */
  private restartWindow(lock: string, me: string, windowMs: number): void {
    // Not ready (an outage): the command would wait in ioredis's offline queue and run at the
    // reconnect, maybe minutes later, taking the bucket for a window then. The window from the
    // lock is the fallback, as for any restart Redis does not run.
    if (this.redis.status !== 'ready') return;
    this.restartScript(lock, me, windowMs).catch(() => undefined);
  }

  /**
   * The lease check of a turn granted longer than a window ago (the reply, or this process, was
   * late): the lock may have expired and been taken by the next waiter, whose IDENTIFY would
   * then share a window with this one. The window is restarted in Redis if the lock is still
   * this waiter's or nobody's; true if it was and the reply came within a window of asking
   * (again late: asked again), false if someone else holds the bucket (wait for a turn again).
   */
  private async confirmTurn(
    lock: string,
    me: string,
    windowMs: number,
    marginMs: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    for (;;) {
      if (signal.aborted) throw abortReason(signal);
      const askedAt = Date.now();
      let held: number;
      try {
        held = Number(await untilAborted(this.restartScript(lock, me, windowMs + marginMs), signal));
      } catch (err) {
        if (signal.aborted) throw abortReason(signal);
        // Unknown whether it is still ours: take a turn again (at worst a window late).
        this.options.onError?.(err instanceof Error ? err : new Error(String(err)));
        return false;
      }
      if (held !== 1) return false;
      if (Date.now() - askedAt < windowMs) return true;
    }
  }

  private restartScript(lock: string, me: string, windowMs: number): Promise<number> {
    const restart = (this.redis as unknown as { shardwardenRestartIdentifyWindow: RestartWindow })
      .shardwardenRestartIdentifyWindow;
    return restart.call(this.redis, lock, me, windowMs);
  }

  /** An unserved waiter (aborted) leaves the queue, so the next one is not kept behind it. */
  private async leaveQueue(queue: string, alive: string, me: string): Promise<void> {
    const cleanup = this.redis
      .multi()
      .zrem(queue, me)
      .zrem(alive, me)
      .exec()
      .catch(() => undefined);
    // While Redis is unreachable the cleanup stays queued for the reconnect; the caller is
    // not kept waiting for it (an entry left behind expires with its alive key anyway).
    if (this.redis.status === 'ready') await within(cleanup, CLEANUP_WAIT_MS, () => undefined);
  }
}

/** The shortest poll: a bucket with no lock is about to be taken by its head. */
const POLL_MIN_MS = 50;

/**
 * How long a waiter sleeps after a poll that did not give it the turn (`r`: the lock's remaining
 * ms, as is for the head of the queue, as -1 - ms for a waiter behind it). Nobody can take the
 * bucket before the lock expires, and a waiter behind the head becomes the head only when the
 * head takes the lock, so every waiter sleeps until the lock expires (the head takes it on time),
 * capped at a sixth of the alive TTL (0.5 s by default): a third of the half TTL after which the
 * bucket looks unpolled (a Redis stall, grace) and a sixth of the TTL after which a waiter is
 * dropped, so timers late on a loaded machine still keep well inside both. Before, a waiter
 * behind the head polled every 50 ms: a C = 1 cold start of N shards had N - 1 waiters polling
 * 20 times a second for up to N windows, CPU taken from the processes still starting.
 */
function pollDelayMs(r: number, aliveTtlMs: number): number {
  const lockMs = r >= 0 ? r : -1 - r;
  if (lockMs === 0) return POLL_MIN_MS;
  return Math.min(lockMs, Math.floor(aliveTtlMs / 6));
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('identify wait aborted');
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

// The listener goes when the timer fires: a wait polls many times on one signal, and a listener
// left per poll grew with the wait (Node warns past 10).
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => (clearTimeout(t), resolve());
    const t = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
