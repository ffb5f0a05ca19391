// What gateway and worker pods share: security context, probes, the token and Redis env.
import { ENV, POD_HTTP_PORT } from '../../bot/runtime-contract.js';
import type { DiscordBot, SecretKeyRef } from '../api/v1alpha1/types.js';

export const secretEnv = (name: string, ref: SecretKeyRef) => ({
  name,
  valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } },
});

export function baseEnv(bot: DiscordBot, discordApiUrl: string) {
  return [
    { name: ENV.botName, value: bot.metadata.name },
    { name: ENV.botNamespace, value: bot.metadata.namespace },
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
