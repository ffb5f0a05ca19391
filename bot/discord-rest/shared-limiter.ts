// The Discord REST budget of one bot, shared by all its processes through Redis. Two Lua scripts
// do all the bookkeeping atomically, on Redis's clock (TIME), so pods with skewed clocks agree:
//
// - ACQUIRE: may this request go now? It checks the shared global pause (after a global 429),
//   the route bucket (remaining/reset learned from Discord's headers), and the global budget,
//   a sliding log of send times (sorted set) holding at most `limit` entries in any
//   `windowMs` (1 s plus a margin). A request that does not fit is given the earliest free
//   slot in the log (a reservation, so waiters across processes are served first come first
//   served) and comes back at that time to claim it. A claim may be late by its allowance
//   (half the margin at first, which the window absorbs); one later than that gives its slot
//   up and reserves anew with twice the allowance (at least 16 ms, at most 5 s), logged at the
//   latest time it may leave less the margin's share, so later slots count the extra lateness.
//   An overloaded event loop that is always late thus still gets its turn, instead of being
//   sent to the back of the queue at every claim.
// - RECORD: what a response said: the bucket's remaining/reset (never raising `remaining`
//   within a window other processes also spend), the route → bucket mapping, and 429s
//   (a bucket exhausted until retry_after, or the global pause for everyone).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../configuration/redis-connection.js';
import type { RateLimitHeaders } from './rate-limit-headers.js';
import { digest, type RouteInfo } from './route-info.js';

const ACQUIRE = `
local globalKey, pauseKey, bucketKey = KEYS[1], KEYS[2], KEYS[3]
local limit, windowMs, exempt, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1', ARGV[4]
local probeMs, lateMs, keepMs, maxLateMs = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local reserved, allowance = tonumber(ARGV[9]), tonumber(ARGV[10])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000

if reserved and now < reserved then return {2, math.ceil(reserved - now), ARGV[9], ARGV[10]} end

if not exempt then
  local pause = tonumber(redis.call('GET', pauseKey) or '0')
  if pause > now then
    if reserved then redis.call('ZREM', globalKey, member) end
    return {3, math.ceil(pause - now)}
  end
end

local b = redis.call('HMGET', bucketKey, 'remaining', 'resetAt', 'limit', 'windowMs', 'probing')
local remaining, resetAt, bLimit, bWindow, probing = tonumber(b[1]) or 0, tonumber(b[2]), tonumber(b[3]), tonumber(b[4]), b[5] == '1'
if resetAt and now < resetAt and remaining <= 0 then
  if reserved then redis.call('ZREM', globalKey, member) end
  local wait = resetAt - now
  -- an unknown bucket has one request out to learn it; look again soon
  if probing then wait = math.min(wait, 50) end
  return {1, math.ceil(wait)}
end

local function take()
  if resetAt and now < resetAt then
    redis.call('HSET', bucketKey, 'remaining', remaining - 1)
  elseif bLimit and bWindow and not probing then
    resetAt = now + bWindow
    redis.call('HSET', bucketKey, 'remaining', bLimit - 1, 'resetAt', resetAt)
  else
    resetAt = now + probeMs
    redis.call('HSET', bucketKey, 'remaining', 0, 'resetAt', resetAt, 'probing', 1)
  end
  redis.call('PEXPIRE', bucketKey, math.ceil(resetAt - now + keepMs))
  return {0, 0}
end

-- the log lives as long as its newest entry needs (never shortened: it may hold later reservations)
local function keepLog(ms)
  if redis.call('PTTL', globalKey) < ms then redis.call('PEXPIRE', globalKey, math.ceil(ms)) end
end

if exempt then return take() end
if reserved then
  if now - reserved <= allowance then
    -- it leaves now: the log says so (at most lateMs after the entry it had; the margin covers that)
    redis.call('ZADD', globalKey, now, member)
    return take()
  end
  redis.call('ZREM', globalKey, member)
  allowance = math.min(math.max(allowance * 2, 16), maxLateMs)
else
  allowance = lateMs
end
redis.call('ZREMRANGEBYSCORE', globalKey, '-inf', now - windowMs)
local count = redis.call('ZCARD', globalKey)
local slot = now
if count >= limit then
  local nth = redis.call('ZRANGE', globalKey, count - limit, count - limit, 'WITHSCORES')
  slot = math.max(slot, tonumber(nth[2]) + windowMs)
end
if slot <= now then
  redis.call('ZADD', globalKey, now, member)
  keepLog(windowMs + 1000)
  return take()
end
-- logged at the latest time it may leave; the first lateMs are the margin's to absorb
local latest = slot + allowance - lateMs
redis.call('ZADD', globalKey, latest, member)
keepLog(latest - now + windowMs + 1000)
return {2, math.ceil(slot - now), string.format('%.3f', slot), tostring(allowance)}
`;

const RECORD = `
local usedKey, bucketKey, routesKey, pauseKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local routeKey, bucketHash, hasWindow = ARGV[1], ARGV[2], ARGV[3] ~= ''
local hLimit, hRemaining, hResetAfter = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local status, retryAfter, global = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'
local offsetMs, keepMs = tonumber(ARGV[9]), tonumber(ARGV[10])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000

if bucketHash ~= '' then
  redis.call('HSET', routesKey, routeKey, bucketHash)
  redis.call('PEXPIRE', routesKey, 86400000)
end
-- the request went out under the route's provisional bucket; Discord has named the real one
if usedKey ~= bucketKey then redis.call('DEL', usedKey) end

local b = redis.call('HMGET', bucketKey, 'remaining', 'resetAt', 'windowMs', 'probing')
local remaining, resetAt, windowMs, probing = tonumber(b[1]) or 0, tonumber(b[2]), tonumber(b[3]), b[4] == '1'
local current = resetAt and now < resetAt and not probing

if status == 429 and global then
  local untilMs = now + (retryAfter or 1000) + offsetMs
  local pause = tonumber(redis.call('GET', pauseKey) or '0')
  if untilMs > pause then
    redis.call('SET', pauseKey, string.format('%.3f', untilMs), 'PX', math.ceil(untilMs - now))
  end
  if probing then redis.call('DEL', bucketKey) end
  return 1
end
if status == 429 then
  local untilMs = now + (retryAfter or 1000) + offsetMs
  if current and resetAt > untilMs then untilMs = resetAt end
  redis.call('HSET', bucketKey, 'remaining', 0, 'resetAt', untilMs)
  redis.call('PEXPIRE', bucketKey, math.ceil(untilMs - now + keepMs))
  return 1
end
if hasWindow then
  local r = now + hResetAfter + offsetMs
  if current then
    remaining = math.min(remaining, hRemaining)
    if resetAt > r then r = resetAt end
  else
    remaining = hRemaining
  end
  redis.call('HSET', bucketKey, 'remaining', remaining, 'resetAt', r, 'limit', hLimit)
  redis.call('HDEL', bucketKey, 'probing')
  if hRemaining == hLimit - 1 and hResetAfter > (windowMs or 0) then
    redis.call('HSET', bucketKey, 'windowMs', hResetAfter)
  end
  redis.call('PEXPIRE', bucketKey, math.ceil(r - now + keepMs))
  return 1
end
-- no rate-limit headers (an error before Discord's limiter, or no response): free the probe
if probing then redis.call('DEL', bucketKey) end
return 1
`;

export interface SharedLimiterOptions {
  /** Whose limits: the Discord application's (discordBudgetPrefix), shared by its bots. */
  keyPrefix: string;
  /** Requests allowed in any window of 1 s + marginMs. */
  globalPerSecond: number;
  /** Added to the 1 s window (see docs/discord-rest.md, "Why the margin"). */
  marginMs: number;
  /** How long an unknown bucket holds its other requests while its first one learns it. */
  probeMs: number;
}

export interface Ticket {
  route: RouteInfo;
  routeKey: string;
  bucketKey: string;
}

type Reply = [number, number, string?, string?];
interface ScriptedRedis {
  shardwardenRestAcquire(...args: (string | number)[]): Promise<Reply>;
  shardwardenRestRecord(...args: (string | number)[]): Promise<number>;
}

/** Added to bucket resets learned from headers: the reply travelled to us meanwhile. */
const RESET_OFFSET_MS = 20;
/** The most a reservation's allowed lateness grows to (it doubles at each missed claim). */
const MAX_LATE_MS = 5_000;
/** Bucket state and route → bucket mappings outlive their windows this long. */
const KEEP_MS = 10 * 60_000;

export class SharedRestLimiter {
  private readonly instance = randomUUID().slice(0, 8);
  private seq = 0;
  /** Route (method + template) → Discord bucket id, as learned; Redis holds the shared copy. */
  private readonly buckets = new Map<string, string>();
  private readonly keys;

  constructor(
    private readonly redis: RedisClient,
    private readonly options: SharedLimiterOptions,
  ) {
    redis.defineCommand('shardwardenRestAcquire', { numberOfKeys: 3, lua: ACQUIRE });
    redis.defineCommand('shardwardenRestRecord', { numberOfKeys: 4, lua: RECORD });
    const k = (...parts: string[]) => [options.keyPrefix, 'rest', ...parts].join(':');
    this.keys = { global: k('global'), pause: k('global-pause'), routes: k('routes'), bucket: k };
  }

  private get scripts(): ScriptedRedis {
    return this.redis as unknown as ScriptedRedis;
  }

  /** Waits until the request may be sent; the ticket goes back to record() with the outcome. */
  async acquire(route: RouteInfo, signal?: AbortSignal): Promise<Ticket> {
    const routeKey = `${route.method} ${route.template}`;
    const member = `${this.instance}:${++this.seq}`;
    const { globalPerSecond, marginMs, probeMs } = this.options;
    let reserved = '';
    let allowance = '';
    for (;;) {
      signal?.throwIfAborted();
      const bucketKey = await this.bucketKey(routeKey, route.major);
      const [code, waitMs, slot, late] = await this.scripts.shardwardenRestAcquire(
        this.keys.global,
        this.keys.pause,
        bucketKey,
        globalPerSecond,
        1000 + marginMs,
        route.globalExempt ? 1 : 0,
        member,
        probeMs,
        // How late a first claim may be: the window's margin absorbs it.
        marginMs / 2,
        KEEP_MS,
        MAX_LATE_MS,
        reserved,
        allowance,
      );
      if (code === 0) return { route, routeKey, bucketKey };
      [reserved, allowance] = code === 2 ? [slot ?? '', late ?? ''] : ['', ''];
      await sleep(waitMs, undefined, { signal });
    }
  }

  /** What the response said about the limits (status 0: no response at all). */
  async record(ticket: Ticket, status: number, headers?: RateLimitHeaders): Promise<void> {
    const learned = headers?.bucket;
    if (learned) this.buckets.set(ticket.routeKey, learned);
    const bucketKey = learned ? this.keys.bucket('bucket', learned, ticket.route.major) : ticket.bucketKey;
    const w = headers?.window;
    await this.scripts.shardwardenRestRecord(
      ticket.bucketKey,
      bucketKey,
      this.keys.routes,
      this.keys.pause,
      ticket.routeKey,
      learned ?? '',
      w?.limit ?? '',
      w?.remaining ?? '',
      w?.resetAfterMs ?? '',
      status,
      headers?.retryAfterMs ?? '',
      headers?.global ? 1 : 0,
      RESET_OFFSET_MS,
      KEEP_MS,
    );
  }

  private async bucketKey(routeKey: string, major: string): Promise<string> {
    let bucket = this.buckets.get(routeKey);
    if (!bucket) {
      bucket = (await this.redis.hget(this.keys.routes, routeKey)) ?? undefined;
      if (bucket) this.buckets.set(routeKey, bucket);
    }
    // Until Discord names the bucket, the route itself is one (hashed: keys stay short).
    return this.keys.bucket('bucket', bucket ?? `route-${digest(routeKey)}`, major);
  }
}
