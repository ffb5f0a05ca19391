// PodDisruptionBudgets: a node drain (or any eviction) takes at most one pod of each gateway
// generation and one worker at a time. Without them a drain evicts every gateway pod of a node
// at once, and all their shards identify again against session_start_limit.
import type { DiscordBot } from '../api/v1alpha1/types.js';
import { gatewayName, gatewaySelector } from './gateway.js';
import { GENERATION_LABEL, objectMeta, selectorLabels, type Component } from './labels.js';
import { workerName } from './worker.js';

function renderBudget(bot: DiscordBot, name: string, component: Component, selector: Record<string, string>) {
  const generation = selector[GENERATION_LABEL];
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: objectMeta(bot, name, component, generation ? { [GENERATION_LABEL]: generation } : {}),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selector },
      // A pod that is not Ready anyway (crash-looping, never scheduled) does not hold a drain up.
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    },
  };
}

/** One per gateway generation, named like its StatefulSet. */
export const renderGatewayDisruptionBudget = (bot: DiscordBot, generation: number) =>
  renderBudget(bot, gatewayName(bot, generation), 'gateway', gatewaySelector(bot, generation));

export const renderWorkerDisruptionBudget = (bot: DiscordBot) =>
  renderBudget(bot, workerName(bot), 'worker', selectorLabels(bot, 'worker'));
