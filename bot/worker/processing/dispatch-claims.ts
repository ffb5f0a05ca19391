// De-duplication of forwarded dispatches, at the consumer: a dispatch runs once per key (its
// de-duplication key, bot/gateway/forwarding/dedup-key.ts) however many times it was queued: a
// RESUME replay, both gateway generations during a reshard, a batch retried after some of its
// dispatches failed. Per batch, one round trip claims every key and one marks the outcome.
//
// A key (`<bot prefix>:dispatch:<key>`, in the bot's hash slot, so a script may touch them all
// on a Redis Cluster) holds the job that claimed it, then `done`. It lives DEDUP_WINDOW_SECONDS
// in both states: a claim is given up explicitly (a failed dispatch), or taken back by its own
// job when BullMQ runs that job again (a retry, or a stalled job after its worker died), so a
// claim needs no lease shorter than the window that could expire under a slow handler.
import type { Redis } from 'ioredis';

/** What the claim found for a key. */
export type ClaimState =
  /** This job runs it: nobody had it, or this job claimed it in an earlier attempt. */
  | 'claimed'
  /** Processed already (within the window): skip it. */
  | 'done'
  /** Another job has it: skip it; if that job fails it, that job's retry runs it. */
  | 'busy';

const DONE = 'done';

/** KEYS: the dispatch keys; ARGV: owner, window (s). One state per key, 0 claimed, 1 done, 2 busy. */
const CLAIM = `
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if not v then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
    out[i] = 0
  elseif v == ARGV[1] then
    out[i] = 0
  elseif v == '${DONE}' then
    out[i] = 1
  else
    out[i] = 2
  end
end
return out`;

/**
 * KEYS: the dispatch keys; ARGV: owner, window (s), then per key `1` (done) or `0` (failed:
 * give the claim up, if still ours, so a later copy or this job's retry can take it).
 */
const FINISH = `
for i, key in ipairs(KEYS) do
  if ARGV[i + 2] == '1' then
    redis.call('SET', key, '${DONE}', 'EX', ARGV[2])
  elseif redis.call('GET', key) == ARGV[1] then
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
  private readonly redis: Redis & ClaimCommands;

  /** `prefix`: the bot's key prefix (queuePrefix); the keys are `<prefix>:dispatch:<key>`. */
  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly windowSeconds: number,
  ) {
    // EVALSHA with a fallback to EVAL (ioredis), defined once per connection.
    const commands = redis as Redis & Partial<ClaimCommands>;
    if (!commands.shardwardenClaimDispatches) {
      redis.defineCommand('shardwardenClaimDispatches', { lua: CLAIM });
      redis.defineCommand('shardwardenFinishDispatches', { lua: FINISH });
    }
    this.redis = redis as Redis & ClaimCommands;
  }

  /** Claims `keys` for `owner` (the job), in one round trip. */
  async claim(owner: string, keys: readonly string[]): Promise<ClaimState[]> {
    if (keys.length === 0) return [];
    const reply = await this.redis.shardwardenClaimDispatches(
      keys.length,
      ...keys.map((k) => this.redisKey(k)),
      owner,
      this.windowSeconds,
    );
    return claimStates(reply, keys.length);
  }

  /** Marks `done` keys processed and gives up `failed` ones (if still `owner`'s), in one round trip. */
  async finish(owner: string, done: readonly string[], failed: readonly string[]): Promise<void> {
    const keys = [...done, ...failed];
    if (keys.length === 0) return;
    await this.redis.shardwardenFinishDispatches(
      keys.length,
      ...keys.map((k) => this.redisKey(k)),
      owner,
      this.windowSeconds,
      ...done.map(() => '1'),
      ...failed.map(() => '0'),
    );
  }

  redisKey(key: string): string {
    return `${this.prefix}:dispatch:${key}`;
  }
}
