// The plan ConfigMap: what the operator decided, readable by humans and tools.
import type { DiscordBot } from '../api/v1alpha1/types.js';
import { podRanges, type ShardPlan } from '../planning/shard-plan.js';
import { objectMeta } from './labels.js';

export const planConfigName = (bot: DiscordBot) => `${bot.metadata.name}-plan`;

export interface GenerationPlan {
  generation: number;
  plan: ShardPlan;
}

const describe = ({ generation, plan }: GenerationPlan) =>
  JSON.stringify({ ...plan, generation, pods: podRanges(plan).map((r, i) => ({ pod: i, ...r })) }, null, 2);

/** The active generation's plan; during a reshard also the generation being started (`next.json`). */
export function renderPlanConfigMap(bot: DiscordBot, active: GenerationPlan, next?: GenerationPlan) {
  const { plan, generation } = active;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: objectMeta(bot, planConfigName(bot)),
    data: {
      'plan.json': describe(active),
      shards: String(plan.shards),
      shardsPerPod: String(plan.shardsPerPod),
      pods: String(plan.pods),
      clustersPerPod: String(plan.clustersPerPod),
      maxConcurrency: String(plan.maxConcurrency),
      generation: String(generation),
      ...(next ? { 'next.json': describe(next) } : {}),
    },
  };
}
