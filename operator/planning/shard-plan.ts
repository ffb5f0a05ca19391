// The shard plan: a pure function from the DiscordBot's sharding spec and Discord's
// GET /gateway/bot answer to total shards, pods and per-pod ranges.
import { podCount, shardRangeOfPod, type ShardRange } from '../../bot/sharding/shard-range.js';
import type { ShardingSpec } from '../api/v1alpha1/types.js';

/** Discord's recommendation assumes about this many guilds per shard. */
export const DISCORD_GUILDS_PER_SHARD = 1000;

export interface DiscordRecommendation {
  shards: number;
  maxConcurrency: number;
}

export interface ShardPlan {
  shards: number;
  shardsPerPod: number;
  pods: number;
  clustersPerPod: number;
  maxConcurrency: number;
}

export function planShards(
  sharding: Pick<ShardingSpec, 'mode' | 'shards' | 'guildsPerShard' | 'shardsPerPod' | 'clustersPerPod'>,
  discord: DiscordRecommendation,
): ShardPlan {
  const maxConcurrency = Math.max(1, discord.maxConcurrency);
  let shards: number;
  if (sharding.mode === 'Fixed') {
    shards = sharding.shards;
  } else {
    // Discord's count assumes ~1000 guilds per shard; scale it to the guilds per shard asked for.
    const scaled = Math.ceil(
      (Math.max(1, discord.shards) * DISCORD_GUILDS_PER_SHARD) / sharding.guildsPerShard,
    );
    // Large bots identify in max_concurrency buckets; a multiple of it keeps the buckets full
    // (Discord requires it for large bot sharding).
    shards = maxConcurrency > 1 ? Math.ceil(scaled / maxConcurrency) * maxConcurrency : Math.max(1, scaled);
  }
  const shardsPerPod = Math.min(sharding.shardsPerPod, shards);
  return {
    shards,
    shardsPerPod,
    pods: podCount(shards, shardsPerPod),
    clustersPerPod: Math.min(sharding.clustersPerPod, shardsPerPod),
    maxConcurrency,
  };
}

export function podRanges(plan: ShardPlan): ShardRange[] {
  return Array.from({ length: plan.pods }, (_, i) => shardRangeOfPod(i, plan.shards, plan.shardsPerPod));
}

export function samePlan(a: ShardPlan | undefined, b: ShardPlan): boolean {
  return (
    !!a &&
    a.shards === b.shards &&
    a.shardsPerPod === b.shardsPerPod &&
    a.pods === b.pods &&
    a.clustersPerPod === b.clustersPerPod &&
    a.maxConcurrency === b.maxConcurrency
  );
}
