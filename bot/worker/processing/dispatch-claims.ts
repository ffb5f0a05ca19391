// De-duplication of forwarded dispatches, at the consumer: a dispatch runs once per key (its
// de-duplication key, bot/gateway/forwarding/dedup-key.ts) however many times it was queued: a
// RESUME replay, both gateway generations during a reshard, a batch retried after some of its
// dispatches failed. Per batch, one round trip claims every key; done marks follow as
// dispatches finish (event-batch-runner.ts).
//
// A key (`<bot prefix>:dispatch:<key>`, in the bot's hash slot, so a script may touch them all
// on a Redis Cluster) holds the attempt that claimed it, then `done`. It lives DEDUP_WINDOW_SECONDS
// in both states (Redis must keep it: `maxmemory-policy noeviction`, docs/install.md). A claim is
// given up explicitly (a failed dispatch), or taken back by a later attempt of its job: BullMQ
// runs a job again after a failure, or after its lock expired (its worker died or stalled).
// An attempt is `<queue>/<job id>/<lock token>`; a later attempt takes the earlier one's claims
// only when the job's lock no longer holds the earlier token, and FINISH touches only keys the
// attempt still holds, so an attempt whose lock lapsed while it ran never removes the claims of
// the attempt that took its job over.
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
   * job id is the dispatch key. A free key whose job exists there is skipped as busy: a worker
   * of an earlier release ran it (it records no claim), or the single-dispatch consumer will.
   */
  singleJobPrefix?: string;
}

export const ownerOf = (o: ClaimOwner) => `${o.job}${o.token}`;

const DONE = 'done';

/**
 * KEYS: [lock key or a key of the slot that is never set], then per dispatch its claim key and
 * the single-dispatch job it would have been (or again its claim key); ARGV: owner, window (s),
 * job part of the owner. One state per dispatch, 0 claimed, 1 done, 2 busy.
 */
const CLAIM = `
local lock = redis.call('GET', KEYS[1])
local out = {}
for i = 2, #KEYS, 2 do
  local key = KEYS[i]
  local n = i / 2
  local v = redis.call('GET', key)
  if not v and KEYS[i + 1] ~= key and redis.call('EXISTS', KEYS[i + 1]) == 1 then
    out[n] = 2
  elseif not v then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
    out[n] = 0
  elseif v == ARGV[1] then
    redis.call('EXPIRE', key, ARGV[2])
    out[n] = 0
  elseif v == '${DONE}' then
    out[n] = 1
  elseif string.sub(v, 1, #ARGV[3]) == ARGV[3] and string.sub(v, #ARGV[3] + 1) ~= lock then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
    out[n] = 0
  else
    out[n] = 2
  end
end
return out`;

/**
 * KEYS: the dispatch keys; ARGV: owner, window (s), then per key `1` (done) or `0` (failed:
 * give the claim up). Either only while the key still holds this owner (or nothing, for done).
 */
const FINISH = `
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if ARGV[i + 2] == '1' then
    if not v or v == ARGV[1] then redis.call('SET', key, '${DONE}', 'EX', ARGV[2]) end
  elseif v == ARGV[1] then
    redis.call('DEL', key)
  end
end
return #KEYS`;

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
  shardwardenClaimDispatches(n: number, ...args: (string | number)[]): Promise<unknown>;
  shardwardenFinishDispatches(n: number, ...args: (string | number)[]): Promise<unknown>;
}

export class DispatchClaims {
  private readonly redis: RedisClient & ClaimCommands;

  /** `prefix`: the bot's key prefix (queuePrefix); the keys are `<prefix>:dispatch:<key>`. */
  constructor(
    redis: RedisClient,
    readonly prefix: string,
    private readonly windowSeconds: number,
  ) {
    // EVALSHA with a fallback to EVAL (ioredis), defined once per connection.
    const commands = redis as RedisClient & Partial<ClaimCommands>;
    if (!commands.shardwardenClaimDispatches) {
      redis.defineCommand('shardwardenClaimDispatches', { lua: CLAIM });
      redis.defineCommand('shardwardenFinishDispatches', { lua: FINISH });
    }
    this.redis = redis as RedisClient & ClaimCommands;
  }

  /** Claims `keys` for `owner` (an attempt at a job), in one round trip. */
  async claim(owner: ClaimOwner, keys: readonly string[]): Promise<ClaimState[]> {
    if (keys.length === 0) return [];
    const single = owner.singleJobPrefix;
    const reply = await this.redis.shardwardenClaimDispatches(
      2 * keys.length + 1,
      owner.lockKey ?? this.redisKey('-no-lock'),
      ...keys.flatMap((k) => [this.redisKey(k), single ? `${single}${k}` : this.redisKey(k)]),
      ownerOf(owner),
      this.windowSeconds,
      owner.job,
    );
    return claimStates(reply, keys.length);
  }

  /** Marks `done` keys processed and gives up `failed` ones (if still `owner`'s), in one round trip. */
  async finish(owner: ClaimOwner, done: readonly string[], failed: readonly string[]): Promise<void> {
    const keys = [...done, ...failed];
    if (keys.length === 0) return;
    await this.redis.shardwardenFinishDispatches(
      keys.length,
      ...keys.map((k) => this.redisKey(k)),
      ownerOf(owner),
      this.windowSeconds,
      ...done.map(() => '1'),
      ...failed.map(() => '0'),
    );
  }

  redisKey(key: string): string {
    return `${this.prefix}:dispatch:${key}`;
  }
}
