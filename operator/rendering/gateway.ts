// The gateway StatefulSet (the Ear) and its headless Service.
import { ENV, GATEWAY_MALLOC_ENV, POD_HTTP_PORT } from '../../bot/runtime-contract.js';
import type { DiscordBot } from '../api/v1alpha1/types.js';
import type { ShardPlan } from '../planning/shard-plan.js';
import {
  GENERATION_LABEL,
  SECRETS_CHECKSUM_ANNOTATION,
  commonLabels,
  objectMeta,
  selectorLabels,
} from './labels.js';
import {
  baseEnv,
  containerSecurityContext,
  httpPort,
  podPlacement,
  podSecurityContext,
  probes,
  tmpMount,
  tmpVolume,
  type PodRuntime,
} from './pods.js';

export interface GatewayRenderInput extends PodRuntime {
  bot: DiscordBot;
  plan: ShardPlan;
  generation: number;
  secretsChecksum: string;
}

/** The headless Service: one for every generation (its selector has no generation). */
export const gatewayServiceName = (bot: DiscordBot) => `${bot.metadata.name}-gateway`;

/**
 * The StatefulSet of one gateway generation. Generation 1 keeps the name it always had, so
 * bots created before resharding existed are not orphaned; later ones get a suffix.
 */
export const gatewayName = (bot: DiscordBot, generation = 1) =>
  generation <= 1 ? gatewayServiceName(bot) : `${gatewayServiceName(bot)}-g${generation}`;

/** The labels that select the pods of one gateway generation. */
export const gatewaySelector = (bot: DiscordBot, generation: number) => ({
  ...selectorLabels(bot, 'gateway'),
  [GENERATION_LABEL]: String(generation),
});

export function renderGatewayStatefulSet(input: GatewayRenderInput) {
  const { bot, plan, generation, secretsChecksum } = input;
  const runtime: PodRuntime = input;
  const tpl = bot.spec.gateway.podTemplate ?? {};
  const selector = gatewaySelector(bot, generation);
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: objectMeta(bot, gatewayName(bot, generation), 'gateway', {
      [GENERATION_LABEL]: String(generation),
    }),
    spec: {
      replicas: plan.pods,
      serviceName: gatewayServiceName(bot),
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels: { ...tpl.labels, ...commonLabels(bot, 'gateway'), ...selector },
          annotations: { ...tpl.annotations, [SECRETS_CHECKSUM_ANNOTATION]: secretsChecksum },
        },
        spec: {
          securityContext: podSecurityContext,
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 30,
          ...podPlacement(tpl, selector),
          containers: [
            {
              name: 'gateway',
              image: bot.spec.image,
              imagePullPolicy: bot.spec.imagePullPolicy,
              args: ['gateway'],
              env: [
                ...baseEnv(bot, runtime),
                // The ordinal, from the label the StatefulSet controller puts on each pod.
                {
                  name: ENV.podIndex,
                  valueFrom: { fieldRef: { fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']" } },
                },
                { name: ENV.totalShards, value: String(plan.shards) },
                { name: ENV.shardsPerPod, value: String(plan.shardsPerPod) },
                // The spec's, not the plan's (capped at the pod's shards): 1 chooses the in-process
                // shape for every pod of the bot (docs/gateway.md); the gateway caps the split.
                { name: ENV.clustersPerPod, value: String(bot.spec.sharding.clustersPerPod) },
                { name: ENV.maxConcurrency, value: String(plan.maxConcurrency) },
                { name: ENV.gatewayGeneration, value: String(generation) },
                { name: ENV.intents, value: bot.spec.intents.join(',') },
                { name: ENV.events, value: bot.spec.events.join(',') },
                ...Object.entries(GATEWAY_MALLOC_ENV).map(([name, value]) => ({ name, value })),
              ],
              ports: [httpPort],
              ...probes,
              ...(bot.spec.gateway.resources ? { resources: bot.spec.gateway.resources } : {}),
              securityContext: containerSecurityContext,
              volumeMounts: [tmpMount],
            },
          ],
          volumes: [tmpVolume],
        },
      },
    },
  };
}

/** Headless Service: stable pod DNS for the StatefulSet, and the gateway's metrics endpoints. */
export function renderGatewayService(bot: DiscordBot) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: objectMeta(bot, gatewayServiceName(bot), 'gateway', { 'shardwarden.io/metrics': 'true' }),
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: selectorLabels(bot, 'gateway'),
      ports: [{ name: 'http', port: POD_HTTP_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}
