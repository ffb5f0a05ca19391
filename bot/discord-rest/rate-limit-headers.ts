// Discord's rate-limit headers of one response, as numbers (milliseconds).

export interface RateLimitHeaders {
  /** X-RateLimit-Bucket: Discord's id for the bucket shared by several routes. */
  bucket?: string;
  /** Limit, remaining and reset-after of the route bucket, when all three are present. */
  window?: { limit: number; remaining: number; resetAfterMs: number };
  /** For a 429: how long to wait (Retry-After, or the body's figure via Reset-After). */
  retryAfterMs?: number;
  /** X-RateLimit-Global / scope global: the bot's global limit, not the bucket. */
  global: boolean;
  /** X-RateLimit-Scope: user, global or shared (a 429's scope; `user` when absent). */
  scope: 'user' | 'global' | 'shared';
}

interface HeaderSource {
  get(name: string): string | null;
  has(name: string): boolean;
}

function num(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export function parseRateLimitHeaders(headers: HeaderSource): RateLimitHeaders {
  const limit = num(headers.get('x-ratelimit-limit'));
  const remaining = num(headers.get('x-ratelimit-remaining'));
  const resetAfter = num(headers.get('x-ratelimit-reset-after'));
  const retryAfter = num(headers.get('retry-after'));
  const rawScope = headers.get('x-ratelimit-scope');
  const global = headers.has('x-ratelimit-global') || rawScope === 'global';
  const scope = global ? 'global' : rawScope === 'shared' ? 'shared' : 'user';
  const bucket = headers.get('x-ratelimit-bucket') ?? undefined;
  return {
    bucket: bucket && /^[\w-]{1,64}$/.test(bucket) ? bucket : undefined,
    window:
      limit !== undefined && remaining !== undefined && resetAfter !== undefined
        ? { limit, remaining, resetAfterMs: resetAfter * 1000 }
        : undefined,
    // Retry-After is whole seconds on some responses; Reset-After has milliseconds. Take the later.
    retryAfterMs:
      retryAfter === undefined && resetAfter === undefined
        ? undefined
        : Math.max(retryAfter ?? 0, global ? 0 : (resetAfter ?? 0)) * 1000,
    global,
    scope,
  };
}
