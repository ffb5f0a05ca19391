// What gateway and worker pods share: security context, probes, the token and Redis env, the
// user's placement settings and the default spread over nodes.
import { ENV, POD_HTTP_PORT } from '../../bot/runtime-contract.js';
import type { DiscordBot, SecretKeyRef } from '../api/v1alpha1/types.js';

export type PodTemplate = NonNullable<DiscordBot['spec']['gateway']['podTemplate']>;

export const secretEnv = (name: string, ref: SecretKeyRef) => ({
  name,
  valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } },
});

/** What the operator knows beyond the spec that gateway and worker pods are told. */
export interface PodRuntime {
  discordApiUrl: string;
  /** The token's Discord application (operator/discord/gateway-bot.ts). */
  applicationId?: string;
  /** No other DiscordBot has this name: the pods may take over the keys of releases before namespaced keys. */
  legacyKeys?: boolean;
}

export function baseEnv(bot: DiscordBot, { discordApiUrl, applicationId, legacyKeys }: PodRuntime) {
  return [
    { name: ENV.botName, value: bot.metadata.name },
    { name: ENV.botNamespace, value: bot.metadata.namespace },
    // Identify and REST budgets are the application's, shared with other bots on its token.
    ...(applicationId ? [{ name: ENV.applicationId, value: applicationId }] : []),
    ...(legacyKeys ? [{ name: ENV.legacyKeys, value: '1' }] : []),
    // Only when partitioned: pods of a bot with one partition keep the template they had.
    ...(bot.spec.redis.eventPartitions > 1
      ? [{ name: ENV.eventPartitions, value: String(bot.spec.redis.eventPartitions) }]
      : []),
    { name: ENV.podName, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: ENV.discordApiUrl, value: discordApiUrl },
    { name: ENV.httpPort, value: String(POD_HTTP_PORT) },
    secretEnv(ENV.discordToken, bot.spec.tokenSecretRef),
    secretEnv(ENV.redisUrl, bot.spec.redis.urlSecretRef),
  ];
}

export const podSecurityContext = {
  runAsNonRoot: true,
  runAsUser: 10001,
  runAsGroup: 10001,
  fsGroup: 10001,
  seccompProfile: { type: 'RuntimeDefault' },
};

export const containerSecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

export const httpPort = { name: 'http', containerPort: POD_HTTP_PORT, protocol: 'TCP' };

export const probes = {
  readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, failureThreshold: 3 },
  livenessProbe: {
    httpGet: { path: '/healthz', port: 'http' },
    periodSeconds: 10,
    failureThreshold: 6,
    initialDelaySeconds: 10,
  },
};

/** A writable /tmp on a read-only root filesystem. */
export const tmpVolume = { name: 'tmp', emptyDir: {} };
export const tmpMount = { name: 'tmp', mountPath: '/tmp' };

/** The topology key of the default spread: one node drained takes few pods of a component. */
export const SPREAD_TOPOLOGY_KEY = 'kubernetes.io/hostname';

/**
 * Where the pods may run, from the user's podTemplate. Without topologySpreadConstraints of
 * their own the pods selected by `selector` spread over nodes; ScheduleAnyway, so a cluster with
 * fewer nodes than pods still schedules them all.
 */
export function podPlacement(tpl: PodTemplate, selector: Record<string, string>) {
  return {
    ...(tpl.nodeSelector ? { nodeSelector: tpl.nodeSelector } : {}),
    ...(tpl.tolerations ? { tolerations: tpl.tolerations } : {}),
    ...(tpl.affinity ? { affinity: tpl.affinity } : {}),
    ...(tpl.priorityClassName ? { priorityClassName: tpl.priorityClassName } : {}),
    topologySpreadConstraints: tpl.topologySpreadConstraints ?? [
      {
        maxSkew: 1,
        topologyKey: SPREAD_TOPOLOGY_KEY,
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: selector },
      },
    ],
  };
}
