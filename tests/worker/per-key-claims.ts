// The claims of the release before the time buckets, as its workers run them (a copy of its
// bot/worker/processing/dispatch-claims.ts, only renamed): a key per dispatch. For the tests of a
// rolling upgrade, old workers beside new ones. A frozen copy: it must never change with
// dispatch-claims.ts, since the workers it stands for do not.
import type { RedisClient } from '../../bot/configuration/redis-connection.js';
import {
  claimStates,
  ownerOf,
  type ClaimOwner,
  type ClaimState,
} from '../../bot/worker/processing/dispatch-claims.js';

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

interface ClaimCommands {
  shardwardenClaimDispatches(n: number, ...args: (string | number)[]): Promise<unknown>;
  shardwardenFinishDispatches(n: number, ...args: (string | number)[]): Promise<unknown>;
}

export class PerKeyClaims {
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
