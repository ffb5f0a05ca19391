// Identify throttling across every gateway pod of a bot, through Redis. Discord allows one
// IDENTIFY per bucket (shard_id % max_concurrency) per 5 s window. Waiters queue per bucket in
// arrival order (fair); a waiter keeps a short-lived "alive" key while it waits, so one that
// dies is skipped instead of blocking the bucket; the bucket lock itself expires after the
// window, so a holder that dies right after taking it cannot block anyone either.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { botKey } from '../../queues/queue-names.js';

const TAKE_TURN = `
local queue, lock, me, windowMs, alivePrefix = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), ARGV[3]
while true do
  local head = redis.call('ZRANGE', queue, 0, 0)[1]
  if not head or redis.call('EXISTS', alivePrefix .. head) == 1 then break end
  redis.call('ZREM', queue, head)
end
if redis.call('ZRANGE', queue, 0, 0)[1] ~= me then return -1 end
local ttl = redis.call('PTTL', lock)
if ttl > 0 then return ttl end
redis.call('SET', lock, me, 'PX', windowMs)
redis.call('ZREM', queue, me)
return 0
`;

export interface IdentifyThrottlerOptions {
  botName: string;
  maxConcurrency: number;
  windowMs: number;
  /** Added to the window: the lock is taken a moment before the IDENTIFY is actually sent. */
  marginMs?: number;
  onWait?: (shardId: number, waitedMs: number) => void;
}

export class RedisIdentifyThrottler {
  private readonly aliveTtlMs = 3_000;

  constructor(
    private readonly redis: Redis,
    private readonly options: IdentifyThrottlerOptions,
  ) {
    redis.defineCommand('shardwardenTakeIdentifyTurn', { numberOfKeys: 2, lua: TAKE_TURN });
  }

  async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
    const { botName, maxConcurrency, windowMs, marginMs = 250 } = this.options;
    const bucket = shardId % maxConcurrency;
    const queue = botKey(botName, 'identify', bucket, 'queue');
    const lock = botKey(botName, 'identify', bucket, 'lock');
    const alivePrefix = botKey(botName, 'identify', 'alive', '');
    const me = `${shardId}:${randomUUID()}`;
    const started = Date.now();
    await this.redis.set(alivePrefix + me, '1', 'PX', this.aliveTtlMs);
    await this.redis.zadd(queue, 'NX', Date.now(), me);
    let lastAlive = Date.now();
    try {
      for (;;) {
        if (signal.aborted) throw signal.reason ?? new Error('identify wait aborted');
        if (Date.now() - lastAlive > this.aliveTtlMs / 3) {
          await this.redis.set(alivePrefix + me, '1', 'PX', this.aliveTtlMs);
          lastAlive = Date.now();
        }
        const r = Number(
          await (
            this.redis as unknown as {
              shardwardenTakeIdentifyTurn(...a: (string | number)[]): Promise<number>;
            }
          ).shardwardenTakeIdentifyTurn(queue, lock, me, windowMs + marginMs, alivePrefix),
        );
        if (r === 0) {
          this.options.onWait?.(shardId, Date.now() - started);
          return;
        }
        await sleep(r > 0 ? Math.min(r, 250) : 50, signal);
      }
    } finally {
      await this.redis
        .multi()
        .zrem(queue, me)
        .del(alivePrefix + me)
        .exec()
        .catch(() => undefined);
    }
  }
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
