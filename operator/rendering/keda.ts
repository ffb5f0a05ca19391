// `worker.autoscaler: KEDA`: a ScaledObject for the worker Deployment, scaled by KEDA's `redis`
// (Redis Lists) scaler on each BullMQ queue's wait list, with the connection from a
// TriggerAuthentication. KEDA wants `host:port` and a password, the bot's Secret holds a URL, so
// the operator derives a Secret from it. Limits (see docs/operator.md): prioritized and delayed
// jobs are not counted (they are sorted sets), and with one trigger per queue the HPA follows the
// busiest queue rather than the sum. A Secret naming a Redis Cluster (redis+cluster://) gets
// KEDA's `redis-cluster` scaler, with the node list as `addresses`. A bot of P > 1 event
// partitions scales on one composite metric instead (KEDA's `advanced.scalingModifiers`, KEDA
// 2.12 or later): the sum of every trigger against the bot's target, the backlog the Builtin
// autoscaler sums. Per-partition triggers against a P-th of the target under-scaled whenever the
// target was below P (KEDA takes whole numbers), and over-scaled for a few hot guilds.
import type { RedisTarget } from '../../bot/configuration/redis-target.js';
import { botQueues, LEGACY_QUEUES, legacyQueuePrefix } from '../../bot/queues/queue-names.js';
import type { DiscordBot } from '../api/v1alpha1/types.js';
import { objectMeta } from './labels.js';
import { workerName } from './worker.js';

export const KEDA_API_VERSION = 'keda.sh/v1alpha1';
export const kedaAuthSecretName = (bot: DiscordBot) => `${bot.metadata.name}-keda-redis`;

export interface RedisConnection {
  /** `host:port`; for a cluster, its nodes' comma-separated (KEDA's `addresses`). */
  address: string;
  /** A Redis Cluster: KEDA's `redis-cluster` scaler, database 0 only. */
  cluster?: true;
  username?: string;
  password?: string;
  databaseIndex: number;
  tls: boolean;
}

/** What KEDA's scalers take of a bot's Redis (parsed by parseRedisTarget, the only parser). */
export function kedaConnection(target: RedisTarget): RedisConnection {
  const nodes = target.cluster ? target.nodes : [target.node];
  return {
    address: nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(','),
    ...(target.cluster ? { cluster: true as const } : {}),
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    databaseIndex: target.cluster ? 0 : target.db,
    tls: target.tls,
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
      [addressParameter(conn)]: conn.address,
      ...(conn.username ? { username: conn.username } : {}),
      ...(conn.password ? { password: conn.password } : {}),
    },
  };
}

export function renderTriggerAuthentication(bot: DiscordBot, conn: RedisConnection) {
  const name = kedaAuthSecretName(bot);
  const params = [
    addressParameter(conn),
    ...(conn.username ? ['username'] : []),
    ...(conn.password ? ['password'] : []),
  ];
  return {
    apiVersion: KEDA_API_VERSION,
    kind: 'TriggerAuthentication',
    metadata: objectMeta(bot, workerName(bot), 'worker'),
    spec: { secretTargetRef: params.map((parameter) => ({ parameter, name, key: parameter })) },
  };
}

/** KEDA's `redis` scaler takes `address`, its `redis-cluster` scaler `addresses`. */
const addressParameter = (conn: RedisConnection) => (conn.cluster ? 'addresses' : 'address');

/**
 * A trigger's name: with scaling modifiers, the formula names triggers as expression
 * identifiers, so `-` becomes `_` (one partition keeps the names of releases before partitions).
 */
const triggerName = (name: string, composite: boolean) => (composite ? name.replaceAll('-', '_') : name);

/**
 * With `legacyKeys`, also a trigger per queue of the release before namespaced keys, whose
 * gateway pods may still be writing there (docs/install.md).
 */
export function renderScaledObject(bot: DiscordBot, conn: RedisConnection, legacyKeys = false) {
  const w = bot.spec.worker;
  const partitions = bot.spec.redis.eventPartitions;
  const composite = partitions > 1;
  const lists = [
    ...botQueues(bot.metadata, partitions).map((q) => ({
      ...q,
      name: triggerName(q.partition > 0 ? `${q.queue}-p${q.partition}` : q.queue, composite),
    })),
    ...(legacyKeys
      ? LEGACY_QUEUES.map((queue) => ({
          queue,
          prefix: legacyQueuePrefix(bot.metadata.name),
          name: triggerName(`${queue}-old-keys`, composite),
        }))
      : []),
  ];
  const target = String(w.targetJobsPerReplica);
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
        // One metric, the sum of every list, against the bot's target (KEDA >= 2.12).
        ...(composite ? { scalingModifiers: { formula: lists.map((l) => l.name).join(' + '), target } } : {}),
      },
      // KEDA's trigger metadata values are strings.
      triggers: lists.map(({ queue, prefix, name }) => ({
        type: conn.cluster ? 'redis-cluster' : 'redis',
        name,
        metadata: {
          listName: `${prefix}:${queue}:wait`,
          listLength: target,
          ...(conn.cluster ? {} : { databaseIndex: String(conn.databaseIndex) }),
          enableTLS: String(conn.tls),
        },
        authenticationRef: { name: workerName(bot) },
      })),
    },
  };
}
