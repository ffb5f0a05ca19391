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
  /** Route templates whose next requests get a 429 regardless, with this retry_after (ms). */
  private readonly forced = new Map<string, Injected[]>();
  /** Route templates whose next requests fail with this HTTP status. */
  private readonly failures = new Map<string, Injected[]>();

  constructor(
    private globalPerSecond: number,
    private readonly routeLimits: Record<string, Limit>,
    private readonly defaultRouteLimit: Limit,
  ) {}

  setGlobalPerSecond(n: number): void {
    this.globalPerSecond = n;
  }

  /**
   * Fault injection by event, not by time: the next `times` requests to `route` (from the bot
   * with `token`, when given, so other bots' requests do not use them up) get a 429.
   */
  force429(route: string, retryAfterMs: number, target: FaultTarget = {}): void {
    inject(this.forced, route, retryAfterMs, target);
  }

  /** The next `times` requests to `route` (from `token`'s bot, when given) fail with `status`. */
  failNext(route: string, status: number, target: FaultTarget = {}): void {
    inject(this.failures, route, status, target);
  }

  /** An injected failure status for this request, if one is pending. */
  takeFailure(route: string, botToken: string | undefined): number | undefined {
    return take(this.failures, route, botToken);
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
    const retryAfterMs = take(this.forced, route, botToken);
    if (retryAfterMs !== undefined) {
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

/** Which requests an injected fault applies to. */
export interface FaultTarget {
  /** How many requests (default 1). */
  times?: number;
  /** Only requests made with this bot token (default: any). */
  token?: string;
}

interface Injected {
  value: number;
  token: string | undefined;
}

function inject(map: Map<string, Injected[]>, route: string, value: number, target: FaultTarget): void {
  const list = map.get(route) ?? [];
  for (let i = 0; i < (target.times ?? 1); i++) list.push({ value, token: target.token });
  map.set(route, list);
}

/** Takes the first pending fault for this route that applies to this token. */
function take(map: Map<string, Injected[]>, route: string, botToken: string | undefined): number | undefined {
  const list = map.get(route);
  const i = list?.findIndex((f) => f.token === undefined || f.token === botToken) ?? -1;
  if (i < 0) return undefined;
  return list!.splice(i, 1)[0]!.value;
}

function window(map: Map<string, Window>, key: string, windowMs: number, now: number): Window {
  let w = map.get(key);
  if (!w || now >= w.resetAt) {
    w = { count: 0, resetAt: now + windowMs };
    map.set(key, w);
  }
  return w;
}
