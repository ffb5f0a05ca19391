// `worker.autoscaler: KEDA`: a ScaledObject for the worker Deployment, scaled by KEDA's `redis`
// (Redis Lists) scaler on each BullMQ queue's wait list, with the connection from a
// TriggerAuthentication. KEDA wants `host:port` and a password, the bot's Secret holds a URL, so
// the operator derives a Secret from it. Limits (see docs/operator.md): prioritized and delayed
// jobs are not counted (they are sorted sets), and with one trigger per queue the HPA follows the
// busiest queue rather than the sum.
import { ALL_QUEUES, legacyQueuePrefix, queuePrefix } from '../../bot/queues/queue-names.js';
import type { DiscordBot } from '../api/v1alpha1/types.js';
import { objectMeta } from './labels.js';
import { workerName } from './worker.js';

export const KEDA_API_VERSION = 'keda.sh/v1alpha1';
export const kedaAuthSecretName = (bot: DiscordBot) => `${bot.metadata.name}-keda-redis`;

export interface RedisConnection {
  address: string;
  username?: string;
  password?: string;
  databaseIndex: number;
  tls: boolean;
}

/** Splits a redis:// or rediss:// URL; the error names the problem, never the URL. */
export function parseRedisUrl(url: string): RedisConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('the Redis URL is not a URL');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new Error(`the Redis URL has scheme "${u.protocol.replace(/:$/, '')}"; KEDA needs redis or rediss`);
  if (!u.hostname) throw new Error('the Redis URL has no host');
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new Error('the Redis URL path is not a database number');
  return {
    address: `${u.hostname}:${u.port || '6379'}`,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    databaseIndex: db === '' ? 0 : Number(db),
    tls: u.protocol === 'rediss:',
  };
}

/** The connection KEDA reads through the TriggerAuthentication (a Secret owned by the bot). */
export function renderKedaAuthSecret(bot: DiscordBot, conn: RedisConnection) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: objectMeta(bot, kedaAuthSecretName(bot), 'worker'),
    type: 'Opaque',
    stringData: {
      address: conn.address,
      ...(conn.username ? { username: conn.username } : {}),
      ...(conn.password ? { password: conn.password } : {}),
    },
  };
}

export function renderTriggerAuthentication(bot: DiscordBot, conn: RedisConnection) {
  const name = kedaAuthSecretName(bot);
  const params = ['address', ...(conn.username ? ['username'] : []), ...(conn.password ? ['password'] : [])];
  return {
    apiVersion: KEDA_API_VERSION,
    kind: 'TriggerAuthentication',
    metadata: objectMeta(bot, workerName(bot), 'worker'),
    spec: { secretTargetRef: params.map((parameter) => ({ parameter, name, key: parameter })) },
  };
}

/**
 * With `legacyKeys`, also a trigger per queue of the release before namespaced keys, whose
 * gateway pods may still be writing there (docs/install.md).
 */
export function renderScaledObject(bot: DiscordBot, conn: RedisConnection, legacyKeys = false) {
  const w = bot.spec.worker;
  const prefixes = [
    { prefix: queuePrefix(bot.metadata), suffix: '' },
    ...(legacyKeys ? [{ prefix: legacyQueuePrefix(bot.metadata.name), suffix: '-old-keys' }] : []),
  ];
  return {
    apiVersion: KEDA_API_VERSION,
    kind: 'ScaledObject',
    metadata: objectMeta(bot, workerName(bot), 'worker'),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: workerName(bot) },
      pollingInterval: 15,
      minReplicaCount: w.minReplicas,
      maxReplicaCount: w.maxReplicas,
      advanced: {
        horizontalPodAutoscalerConfig: {
          behavior: { scaleDown: { stabilizationWindowSeconds: w.scaleDownStabilizationSeconds } },
        },
      },
      // KEDA's trigger metadata values are strings.
      triggers: prefixes.flatMap(({ prefix, suffix }) =>
        ALL_QUEUES.map((queue) => ({
          type: 'redis',
          name: `${queue}${suffix}`,
          metadata: {
            listName: `${prefix}:${queue}:wait`,
            listLength: String(w.targetJobsPerReplica),
            databaseIndex: String(conn.databaseIndex),
            enableTLS: String(conn.tls),
          },
          authenticationRef: { name: workerName(bot) },
        })),
      ),
    },
  };
}
