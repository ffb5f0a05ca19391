// The plan ConfigMap: what the operator decided, readable by humans and tools.
import type { DiscordBot } from '../api/v1alpha1/types.js';
import { podRanges, type ShardPlan } from '../planning/shard-plan.js';
import { objectMeta } from './labels.js';

export const planConfigName = (bot: DiscordBot) => `${bot.metadata.name}-plan`;

export function renderPlanConfigMap(bot: DiscordBot, plan: ShardPlan, generation: number) {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: objectMeta(bot, planConfigName(bot)),
    data: {
      'plan.json': JSON.stringify(
        { ...plan, generation, pods: podRanges(plan).map((r, i) => ({ pod: i, ...r })) },
        null,
        2,
      ),
      shards: String(plan.shards),
      shardsPerPod: String(plan.shardsPerPod),
      pods: String(plan.pods),
      clustersPerPod: String(plan.clustersPerPod),
      maxConcurrency: String(plan.maxConcurrency),
      generation: String(generation),
    },
  };
}
