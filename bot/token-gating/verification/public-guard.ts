// What keeps the public verification routes from hurting the bot: anyone on the internet can
// call them, and each call would otherwise open a transaction from the worker's database pool,
// so a flood could starve the interactions that share it.
//  - a per-client-address and a per-nonce request limit, counted in the bot's Redis (so it holds
//    across all worker replicas); when Redis does not answer quickly the request goes on
//    (fail open, like command cooldowns) and the pool cap below still bounds the harm;
//  - a cap on how many public-route transactions run at once (the rest of the pool stays free
//    for interactions and tasks), with a short bounded queue; beyond it, 503;
//  - security headers on every response of these routes.
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../../configuration/redis-connection.js';
import { within } from '../../timing/within.js';

export interface Limit {
  /** Requests allowed per window. */
  max: number;
  windowMs: number;
}

export const PUBLIC_LIMITS = {
  perClient: { max: 30, windowMs: 60_000 },
  perNonce: { max: 10, windowMs: 60_000 },
} satisfies Record<string, Limit>;

// One fixed window per key: INCR, and the expiry set by the request that opened the window.
const COUNT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

export class RequestLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: (...parts: (string | number)[]) => string,
    private readonly timeoutMs = 500,
  ) {}

  /** Counts one request against `limit`; returns 0 when allowed, else the milliseconds to wait. */
  async take(scope: string, id: string, limit: Limit): Promise<number> {
    // Fail open, and without queueing: a client that waits for a reconnect would pile up a
    // command per request in ioredis's offline queue during an outage.
    if (this.redis.status !== 'ready') return 0;
    const count = async () => {
      const [n, ttl] = (await this.redis.eval(
        COUNT,
        1,
        this.key('public-limit', scope, id),
        limit.windowMs,
      )) as [number, number];
      return n <= limit.max ? 0 : Math.max(1, ttl);
    };
    // An error reply (OOM, READONLY) fails open too, rather than refusing the member with a 500.
    return within(
      count().catch(() => 0),
      this.timeoutMs,
      () => 0,
    );
  }
}

export class BusyError extends Error {}

/** At most `slots` holders at once; up to `queue` more wait, in order; anyone beyond is refused. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly slots: number,
    readonly queue: number,
  ) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.slots) {
      if (this.waiting.length >= this.queue) throw new BusyError('too many requests in progress');
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.active += 1;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next(); // the slot passes straight to the next waiter
      else this.active -= 1;
    }
  }
}

/** Public routes may hold at most a quarter of the pool (at least one connection). */
export function publicSlots(poolMax: number): number {
  return Math.max(1, Math.floor(poolMax / 4));
}

/** A fresh value for the page's inline script (CSP script-src 'nonce-...'). */
export function scriptNonce(): string {
  return randomBytes(16).toString('base64');
}

/** The headers of every public response: no framing, no referrer, no sniffing, only our script. */
export function securityHeaders(nonce: string): Record<string, string> {
  return {
    'content-security-policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  };
}
