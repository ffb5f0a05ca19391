// De-duplication of forwarded dispatches, at the consumer: a dispatch runs once per key (its
// de-duplication key, bot/gateway/forwarding/dedup-key.ts) however many times it was queued: a
// RESUME replay, both gateway generations during a reshard, a batch retried after some of its
// dispatches failed. Per batch, one round trip claims every key; done marks follow as
// dispatches finish (event-batch-runner.ts).
//
// The marks are fields of a hash per time bucket, `<bot prefix>:claims:<n>` (n = Redis' clock in
// seconds ÷ DEDUP_WINDOW_SECONDS), in the bot's (or partition's) hash slot: a batch reads and
// writes all its keys with one HMGET / HSET per bucket, not a command per dispatch. A lookup
// reads the current and the previous bucket, so a mark is seen at least one window after it was
// written (and at most two); once a bucket is neither, the upkeep UNLINKs it (freed in the
// background), with an expiry later as a backstop only. A field holds the attempt
// that claimed it, then `done` (Redis must keep it: `maxmemory-policy noeviction`,
// docs/install.md). A claim is given up explicitly (a failed dispatch), or taken back by a later
// attempt of its job: BullMQ runs a job again after a failure, or after its lock expired (its
// worker died or stalled). An attempt is `<queue>/<job id>/<lock token>`; a later attempt takes
// the earlier one's claims only when the job's lock no longer holds the earlier token, and
// FINISH touches only marks the attempt still holds, so an attempt whose lock lapsed while it ran
// never removes the claims of the attempt that took its job over.
//
// Workers of the release before the buckets kept a key per dispatch (`<prefix>:dispatch:<key>`,
// the same values). While `<prefix>:claims:per-key` exists (claim-format.ts sets it for a window
// whenever such a worker is connected), the scripts read and write those keys too, so old and new
// workers side by side see each other's claims (docs/workers.md, "Upgrading the claims").
import type { RedisClient } from '../../configuration/redis-connection.js';

/** What the claim found for a key. */
export type ClaimState =
  /** This attempt runs it: nobody had it, or an earlier attempt of this job that is gone. */
  | 'claimed'
  /** Processed already (within the window): skip it. */
  | 'done'
  /** Another job (or a live attempt of this one) has it: skip it; if it fails, its retry runs it. */
  | 'busy';

/** One attempt at a job: who claims. */
export interface ClaimOwner {
  /** `<queue>/<job id>/`: what every attempt of the job starts with. */
  job: string;
  /** BullMQ's lock token of this attempt. */
  token: string;
  /** The job's lock key when it is in the claims' hash slot (else lock checks are skipped). */
  lockKey?: string;
  /**
   * For a batch: the key prefix of the single-dispatch queue's jobs (`<prefix>:events:`), whose
   * job id is the dispatch key. While that queue holds any job, a free key whose job exists
   * there is skipped as busy: a worker of an earlier release ran it (it records no claim), or
   * the single-dispatch consumer will.
   */
  singleJobPrefix?: string;
  /**
   * Set by `claim`: the bucket its claims went to and whether per-key marks were kept then. This
   * attempt's done marks go to that bucket, and its finishes need not read the clock or the flag.
   */
  claimedIn?: { bucket: number; perKey: boolean };
}

export const ownerOf = (o: ClaimOwner) => `${o.job}${o.token}`;

const DONE = 'done';

/**
 * Shared by the scripts: the bucket keys from Redis' clock (one clock for every worker: the
 * node's), each key's mark (`done` wins, else the newer bucket's, else the per-key mark of the
 * old release while those are kept), and the variadic reads and writes. The buckets get no TTL
 * here: the periodic upkeep (UPKEEP) unlinks them and sets a backstop expiry, once per interval.
 */
const COMMON = `
local function bucketNow(window)
  return math.floor(tonumber(redis.call('TIME')[1]) / window)
end
local function perKeyMarks(prefix, first, on)
  if not on then return nil end
  local out = {}
  for i = first, #ARGV do out[i - first + 1] = redis.call('GET', prefix .. ':dispatch:' .. ARGV[i]) end
  return out
end
local function markOf(c, p, o)
  if c == '${DONE}' or p == '${DONE}' or o == '${DONE}' then return '${DONE}' end
  return c or p or o
end
-- A variadic command over list[from..], in parts: Lua's unpack takes at most a few thousand
-- values (a batch is at most 1,000 dispatches, but a reader may claim more at once).
local function each(cmd, key, list, from)
  local out = {}
  for i = from, #list, 1000 do
    local part = redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))
    if type(part) == 'table' then
      for j = 1, #part do out[#out + 1] = part[j] end
    end
  end
  return out
end
local function hset(key, pairs)
  if #pairs > 0 then each('HSET', key, pairs, 1) end
end
`;

/**
 * KEYS: the job's lock key (or a key of the slot that is never set); ARGV: the claims' prefix,
 * owner, window (s), job part of the owner, single-dispatch job prefix ('' for none, or while
 * that queue holds no job), whether per-key marks are kept (1/0), then the dispatch keys. One
 * state per dispatch, 0 claimed, 1 done, 2 busy, then the bucket the claims went to (FINISH
 * writes there). The flags come from the process's last look (DispatchClaims.readMode), so a
 * claim reads no flag key; the lock only when a mark of another attempt of its job is found.
 */
const CLAIM = `${COMMON}
local prefix, owner, window, job, single = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local first = 7
local b = bucketNow(window)
local cur, prev = prefix .. ':claims:' .. b, prefix .. ':claims:' .. (b - 1)
local lock = nil
local function lockNow()
  if lock == nil then lock = redis.call('GET', KEYS[1]) or '' end
  return lock
end
local c = each('HMGET', cur, ARGV, first)
local p = each('HMGET', prev, ARGV, first)
local o = perKeyMarks(prefix, first, ARGV[6] == '1')
local out, claimed = {}, {}
for i = 1, #ARGV - first + 1 do
  local f = ARGV[i + first - 1]
  local v = markOf(c[i], p[i], o and o[i])
  local take = false
  if not v then
    if single ~= '' and redis.call('EXISTS', single .. f) == 1 then out[i] = 2 else take = true end
  elseif v == owner then
    take = true
  elseif v == '${DONE}' then
    out[i] = 1
  elseif string.sub(v, 1, #job) == job and string.sub(v, #job + 1) ~= lockNow() then
    take = true
  else
    out[i] = 2
  end
  if take then
    out[i] = 0
    claimed[#claimed + 1] = f
    claimed[#claimed + 1] = owner
    if o then redis.call('SET', prefix .. ':dispatch:' .. f, owner, 'EX', window) end
  end
end
hset(cur, claimed)
out[#out + 1] = b
return out`;

/**
 * KEYS: the job's lock key (or a key of the slot that is never set); ARGV: the claims' prefix,
 * owner, window (s), the attempt's lock token ('' without a lock key), how many of the keys are
 * done, the claim's bucket and per-key flag ('' and '' to read them now), then the keys: the done
 * ones (marked done while free or still this owner's), then the failed ones (given up while still
 * this owner's). Done marks go to the claim's bucket: read until two windows after its start,
 * they are seen at least a window after the claim.
 */
const FINISH = `${COMMON}
local prefix, owner, window, token, ndone = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local first = 8
local nkeys = #ARGV - first + 1
local b, perKey = tonumber(ARGV[6]), ARGV[7]
if not b then b = bucketNow(window) end
if perKey == '' then perKey = redis.call('EXISTS', prefix .. ':claims:per-key') == 1 else perKey = perKey == '1' end
local cur, prev = prefix .. ':claims:' .. b, prefix .. ':claims:' .. (b - 1)
local o = perKeyMarks(prefix, first, perKey)
-- While the job's lock holds this attempt's token, no other attempt has taken its claims (a
-- takeover needs the lock to hold another token, and the lock never returns to an earlier
-- one), and another job never takes them: written without reading them first.
if not o and token ~= '' and redis.call('GET', KEYS[1]) == token then
  local done = {}
  for i = first, first + ndone - 1 do
    done[#done + 1] = ARGV[i]
    done[#done + 1] = '${DONE}'
  end
  hset(cur, done)
  if nkeys > ndone then
    each('HDEL', cur, ARGV, first + ndone)
    each('HDEL', prev, ARGV, first + ndone)
  end
  return nkeys
end
local c = each('HMGET', cur, ARGV, first)
local p = each('HMGET', prev, ARGV, first)
local done = {}
for i = 1, nkeys do
  local f = ARGV[i + first - 1]
  local v = markOf(c[i], p[i], o and o[i])
  if i <= ndone then
    if not v or v == owner then
      done[#done + 1] = f
      done[#done + 1] = '${DONE}'
      if o then redis.call('SET', prefix .. ':dispatch:' .. f, '${DONE}', 'EX', window) end
    end
  elseif v == owner then
    if c[i] == owner then redis.call('HDEL', cur, f) end
    if p[i] == owner then redis.call('HDEL', prev, f) end
    if o and o[i] == owner then redis.call('DEL', prefix .. ':dispatch:' .. f) end
  end
end
hset(cur, done)
return nkeys`;

/** ARGV: the claims' prefix, window (s), the key. The key's mark, or nil. */
const MARK = `${COMMON}
local b = bucketNow(tonumber(ARGV[2]))
local o = perKeyMarks(ARGV[1], 3, redis.call('EXISTS', ARGV[1] .. ':claims:per-key') == 1)
return markOf(redis.call('HGET', ARGV[1] .. ':claims:' .. b, ARGV[3]),
  redis.call('HGET', ARGV[1] .. ':claims:' .. (b - 1), ARGV[3]), o and o[1])`;

/**
 * Once per interval per prefix (claim-format.ts): frees the buckets no lookup reads any more with
 * UNLINK (in the background: one bucket holds a window of the prefix's dispatches, and a DEL or
 * an expiry of it would block Redis for as long as freeing takes, lazyfree-lazy-expire being off
 * by default), sets a backstop expiry on the buckets read now (for when no worker runs), and,
 * for the bot's prefix, flags the single-dispatch queue while it holds any job.
 * ARGV: the claims' prefix, window (s), backstop margin (s), single-dispatch job prefix ('' for
 * none). Answers the current bucket.
 */
const UPKEEP = `
local prefix, window, margin, single = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local b = math.floor(tonumber(redis.call('TIME')[1]) / window)
local base = prefix .. ':claims:'
-- b - 2 is the first no lookup reads; the older ones only if an upkeep was missed.
redis.call('UNLINK', base .. (b - 2), base .. (b - 3), base .. (b - 4))
redis.call('EXPIREAT', base .. b, (b + 2) * window + margin)
redis.call('EXPIREAT', base .. (b - 1), (b + 1) * window + margin)
if single ~= '' then
  local n = redis.call('LLEN', single .. 'wait') + redis.call('LLEN', single .. 'active')
    + redis.call('LLEN', single .. 'paused') + redis.call('ZCARD', single .. 'delayed')
    + redis.call('ZCARD', single .. 'prioritized') + redis.call('ZCARD', single .. 'completed')
    + redis.call('ZCARD', single .. 'failed') + redis.call('ZCARD', single .. 'waiting-children')
  if n > 0 then redis.call('SET', prefix .. ':claims:singles', '1', 'EX', window) end
end
return b`;

const STATES: readonly ClaimState[] = ['claimed', 'done', 'busy'];

/** The script's answer as states, one per key; anything else is a programming error. */
export function claimStates(reply: unknown, keys: number): ClaimState[] {
  if (!Array.isArray(reply) || reply.length !== keys)
    throw new Error(`claim script answered ${JSON.stringify(reply)} for ${keys} keys`);
  return reply.map((code) => {
    const state = STATES[Number(code)];
    if (!state) throw new Error(`claim script answered an unknown state ${JSON.stringify(code)}`);
    return state;
  });
}

interface ClaimCommands {
  shardwardenClaimBuckets(n: number, ...args: (string | number)[]): Promise<unknown>;
  shardwardenFinishBuckets(n: number, ...args: (string | number)[]): Promise<unknown>;
  shardwardenMarkInBuckets(n: number, ...args: (string | number)[]): Promise<unknown>;
  shardwardenClaimsUpkeep(n: number, ...args: (string | number)[]): Promise<unknown>;
}

/** What a batch's run needs of the claims (the release before this one's have it too). */
export type Claims = Pick<DispatchClaims, 'prefix' | 'claim' | 'finish'>;

export class DispatchClaims {
  private readonly redis: RedisClient & ClaimCommands;
  /** The flags as last read (readMode): per-key marks kept, single-dispatch queue holding jobs. */
  private mode = { perKey: false, singles: false };

  /** `prefix`: the bot's (or partition's) key prefix (queuePrefix); the claims live under it. */
  constructor(
    redis: RedisClient,
    readonly prefix: string,
    private readonly windowSeconds: number,
  ) {
    // EVALSHA with a fallback to EVAL (ioredis), defined once per connection.
    const commands = redis as RedisClient & Partial<ClaimCommands>;
    if (!commands.shardwardenClaimBuckets) {
      redis.defineCommand('shardwardenClaimBuckets', { lua: CLAIM });
      redis.defineCommand('shardwardenFinishBuckets', { lua: FINISH });
      redis.defineCommand('shardwardenMarkInBuckets', { lua: MARK });
      redis.defineCommand('shardwardenClaimsUpkeep', { lua: UPKEEP });
    }
    this.redis = redis as RedisClient & ClaimCommands;
  }

  /** A key of the prefix's slot that is never set: routes a script there when no lock key does. */
  private get slotKey(): string {
    return `${this.prefix}:claims:-no-lock`;
  }

  /** Claims `keys` for `owner` (an attempt at a job), in one round trip; sets `owner.claimedIn`. */
  async claim(owner: ClaimOwner, keys: readonly string[]): Promise<ClaimState[]> {
    if (keys.length === 0) return [];
    const reply = await this.redis.shardwardenClaimBuckets(
      1,
      owner.lockKey ?? this.slotKey,
      this.prefix,
      ownerOf(owner),
      this.windowSeconds,
      owner.job,
      this.mode.singles ? (owner.singleJobPrefix ?? '') : '',
      this.mode.perKey ? '1' : '0',
      ...keys,
    );
    if (!Array.isArray(reply) || reply.length !== keys.length + 1)
      throw new Error(`claim script answered ${JSON.stringify(reply)} for ${keys.length} keys`);
    owner.claimedIn = { bucket: Number(reply[keys.length]), perKey: this.mode.perKey };
    return claimStates(reply.slice(0, keys.length), keys.length);
  }

  /** Marks `done` keys processed and gives up `failed` ones (if still `owner`'s), in one round trip. */
  async finish(owner: ClaimOwner, done: readonly string[], failed: readonly string[]): Promise<void> {
    if (done.length + failed.length === 0) return;
    const at = owner.claimedIn;
    await this.redis.shardwardenFinishBuckets(
      1,
      owner.lockKey ?? this.slotKey,
      this.prefix,
      ownerOf(owner),
      this.windowSeconds,
      owner.lockKey ? owner.token : '',
      done.length,
      at ? at.bucket : '',
      at ? (at.perKey ? '1' : '0') : '',
      ...done,
      ...failed,
    );
  }

  /** A key's mark: `done`, the attempt holding it, or null (for tests and diagnostics). */
  async markOf(key: string): Promise<string | null> {
    const mark = await this.redis.shardwardenMarkInBuckets(
      1,
      this.slotKey,
      this.prefix,
      this.windowSeconds,
      key,
    );
    return typeof mark === 'string' ? mark : null;
  }

  /**
   * The periodic upkeep (UPKEEP): old buckets unlinked, a backstop expiry `marginSeconds` after
   * the last moment a bucket is read, the single-dispatch queue flagged while it holds jobs.
   * Answers the current bucket.
   */
  async upkeep(marginSeconds: number, singleJobPrefix = ''): Promise<number> {
    return Number(
      await this.redis.shardwardenClaimsUpkeep(
        1,
        this.slotKey,
        this.prefix,
        this.windowSeconds,
        marginSeconds,
        singleJobPrefix,
      ),
    );
  }

  /**
   * Reads and writes the old release's per-key marks too for the next `seconds`: a worker of that
   * release is connected (claim-format.ts).
   */
  async keepPerKeyMarks(seconds: number): Promise<void> {
    await this.redis.set(`${this.prefix}:claims:per-key`, '1', 'EX', seconds);
    this.mode.perKey = true;
  }

  /**
   * Reads the flags the claims follow until the next read (once per interval, claim-format.ts):
   * whether per-key marks are kept, and whether the single-dispatch queue held jobs lately.
   */
  async readMode(): Promise<void> {
    const [perKey, singles] = await this.redis.mget(
      `${this.prefix}:claims:per-key`,
      `${this.prefix}:claims:singles`,
    );
    this.mode = { perKey: perKey !== null, singles: singles !== null };
  }
}
