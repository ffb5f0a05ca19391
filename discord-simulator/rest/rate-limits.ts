// Discord's REST rate limits: a global per-bot limit (50 requests/s by default) and per-route
// buckets keyed by the route and its major parameter, announced through X-RateLimit-* headers.
import { createHash } from 'node:crypto';

export interface Limit {
  limit: number;
  windowMs: number;
}

interface Window {
  count: number;
  resetAt: number;
}

export type Verdict =
  | { ok: true; limit: number; remaining: number; resetAt: number; bucket: string }
  | {
      ok: false;
      scope: 'global' | 'user';
      retryAfterMs: number;
      limit: number;
      resetAt: number;
      bucket: string;
    };

export class RateLimits {
  private readonly global = new Map<string, Window>();
  private readonly routes = new Map<string, Window>();
  /** Route templates whose next request gets a 429 regardless (fault injection). */
  private readonly forced = new Map<string, number[]>();
  /** Route templates whose next requests fail with this HTTP status (fault injection). */
  private readonly failures = new Map<string, number[]>();

  constructor(
    private globalPerSecond: number,
    private readonly routeLimits: Record<string, Limit>,
    private readonly defaultRouteLimit: Limit,
  ) {}

  setGlobalPerSecond(n: number): void {
    this.globalPerSecond = n;
  }

  force429(route: string, retryAfterMs: number, times = 1): void {
    const list = this.forced.get(route) ?? [];
    for (let i = 0; i < times; i++) list.push(retryAfterMs);
    this.forced.set(route, list);
  }

  failNext(route: string, status: number, times = 1): void {
    const list = this.failures.get(route) ?? [];
    for (let i = 0; i < times; i++) list.push(status);
    this.failures.set(route, list);
  }

  /** An injected failure status for this route, if one is pending. */
  takeFailure(route: string): number | undefined {
    return this.failures.get(route)?.shift();
  }

  static bucketHash(route: string): string {
    return createHash('sha1').update(route).digest('hex').slice(0, 16);
  }

  /** The route bucket's state without spending a request: for responses refused before the check. */
  peek(botToken: string | undefined, route: string, majorParam: string, now = Date.now()) {
    const bucket = RateLimits.bucketHash(route);
    const routeLimit = this.routeLimits[route] ?? this.defaultRouteLimit;
    const w = this.routes.get(`${botToken ?? ''}:${bucket}:${majorParam}`);
    const live = w && now < w.resetAt ? w : { count: 0, resetAt: now + routeLimit.windowMs };
    return {
      limit: routeLimit.limit,
      remaining: routeLimit.limit - live.count,
      resetAt: live.resetAt,
      bucket,
    };
  }

  check(botToken: string | undefined, route: string, majorParam: string, now = Date.now()): Verdict {
    const bucket = RateLimits.bucketHash(route);
    const routeLimit = this.routeLimits[route] ?? this.defaultRouteLimit;
    const forced = this.forced.get(route);
    if (forced?.length) {
      const retryAfterMs = forced.shift()!;
      return {
        ok: false,
        scope: 'user',
        retryAfterMs,
        limit: routeLimit.limit,
        resetAt: now + retryAfterMs,
        bucket,
      };
    }
    const limited = (scope: 'global' | 'user', w: Window): Verdict => ({
      ok: false,
      scope,
      retryAfterMs: w.resetAt - now,
      limit: routeLimit.limit,
      resetAt: w.resetAt,
      bucket,
    });
    // Interaction endpoints (no bot token) are not bound by the global limit.
    if (botToken !== undefined) {
      const g = window(this.global, botToken, 1000, now);
      if (g.count >= this.globalPerSecond) return limited('global', g);
      g.count += 1;
    }
    const key = `${botToken ?? ''}:${bucket}:${majorParam}`;
    const w = window(this.routes, key, routeLimit.windowMs, now);
    if (w.count >= routeLimit.limit) return limited('user', w);
    w.count += 1;
    return {
      ok: true,
      limit: routeLimit.limit,
      remaining: routeLimit.limit - w.count,
      resetAt: w.resetAt,
      bucket,
    };
  }
}

function window(map: Map<string, Window>, key: string, windowMs: number, now: number): Window {
  let w = map.get(key);
  if (!w || now >= w.resetAt) {
    w = { count: 0, resetAt: now + windowMs };
    map.set(key, w);
  }
  return w;
}
