// The reconcile step that decides who sizes the worker Deployment: the Builtin autoscaler (reads
// the backlog, decides, says so), KEDA (a ScaledObject; replicas left alone) or None. It also
// undoes what the previous mode set up: hands the replicas field over before the operator stops
// applying it, and deletes a ScaledObject it no longer wants.
import type { KubernetesObject, V1Deployment, V1Secret } from '@kubernetes/client-node';
import type { RedisTarget } from '../../bot/configuration/redis-target.js';
import type { Logger } from '../../bot/observability/logger.js';
import type { DiscordBot, DiscordBotStatus } from '../api/v1alpha1/types.js';
import { BacklogReader, RedisUnavailableError, backlogOf } from '../autoscaling/backlog-reader.js';
import { clampReplicas, decideReplicas, type Recommendation } from '../autoscaling/worker-autoscaler.js';
import { apiserverCode, describeError, type Cluster, type EventType } from '../kube/cluster.js';
import type { OperatorMetrics } from '../metrics/operator-metrics.js';
import { withSpecHash, type RenderedObject } from '../rendering/desired-objects.js';
import {
  KEDA_API_VERSION,
  kedaAuthSecretName,
  kedaConnection,
  renderKedaAuthSecret,
  renderScaledObject,
  renderTriggerAuthentication,
} from '../rendering/keda.js';
import { FIELD_MANAGER, SPEC_HASH_ANNOTATION } from '../rendering/labels.js';
import { workerName } from '../rendering/worker.js';
import type { ConditionInput } from './conditions.js';

/** Field manager that keeps `spec.replicas` when the operator stops applying it. */
export const HANDOVER_FIELD_MANAGER = 'shardwarden-operator-handover';

type WorkersStatus = NonNullable<DiscordBotStatus['workers']>;

export interface WorkerScalingDeps {
  cluster: Cluster;
  backlog: BacklogReader;
  metrics: OperatorMetrics;
  getSecret(namespace: string, name: string): V1Secret | undefined;
  /** How often the Builtin autoscaler looks at the backlog. */
  intervalMs: number;
  log: Logger;
}

export interface WorkerScalingInput {
  key: string;
  bot: DiscordBot;
  redisUrl: string;
  /** `redisUrl` parsed (the reconciler refuses a bot whose value names no Redis). */
  redis: RedisTarget;
  /** The live worker Deployment, if any (informer cache). */
  deployment: V1Deployment | undefined;
  before: DiscordBotStatus;
  now: Date;
  /** Count the queues of releases before namespaced keys too (ENV.legacyKeys). */
  legacyKeys?: boolean;
}

export interface WorkerScalingResult {
  /** Replicas to render into the Deployment; undefined leaves the field to someone else. */
  replicas?: number;
  workers: Pick<WorkersStatus, 'backlog' | 'desiredReplicas' | 'autoscaler' | 'lastScaleTime'>;
  /** The WorkersScaled condition; undefined removes it. */
  condition?: ConditionInput;
  events: [EventType, string, string][];
  requeueAfterMs?: number;
}

interface KedaRefusal {
  reason: 'KEDANotInstalled' | 'AutoscalerForbidden';
  message: string;
}

/** Why writing a KEDA object failed, when it is KEDA's absence or a missing permission. */
function kedaRefusal(
  err: unknown,
  obj: { kind: string; metadata: { name: string; namespace: string } },
  verb: 'apply' | 'delete',
): KedaRefusal | undefined {
  switch (apiserverCode(err)) {
    case 404:
      return {
        reason: 'KEDANotInstalled',
        message:
          'The keda.sh/v1alpha1 ScaledObject and TriggerAuthentication kinds are not installed; install KEDA or choose another worker.autoscaler',
      };
    case 403:
      // The apiserver's words name the verb, resource and identity, never the Secret's values.
      return {
        reason: 'AutoscalerForbidden',
        message: `The operator may not ${verb} ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name} ${verb === 'apply' ? 'for' : 'left from'} KEDA (${describeError(err)}); grant it (the chart's rbac.keda: true) or ${verb === 'apply' ? 'choose another worker.autoscaler' : "delete it by hand; KEDA keeps the workers' replicas until then"}`,
      };
    default:
      return undefined;
  }
}

/** The Warning Event for a failing WorkersScaled reason, only when it first appears. */
function firstWarning(
  before: DiscordBotStatus,
  reason: string,
  message: string,
): [EventType, string, string][] {
  const was = before.conditions?.find((c) => c.type === 'WorkersScaled');
  return was?.status === 'False' && was.reason === reason ? [] : [['Warning', reason, message]];
}

/**
 * `spec.worker.targetBacklogPerReplica` counted jobs of one dispatch each, and the apiserver
 * stored its old default (200) in every bot created before batching: read as jobs of up to 100
 * dispatches it would let a replica fall 20,000 dispatches behind. So it is ignored, and while it
 * is set WorkersScaled says so and one Warning Event (when the note first appears) names the
 * replacement.
 */
export function deprecationNote(bot: DiscordBot): string | undefined {
  const w = bot.spec.worker;
  if (w.targetBacklogPerReplica === undefined) return undefined;
  return `spec.worker.targetBacklogPerReplica (${w.targetBacklogPerReplica}) is deprecated and ignored; targetJobsPerReplica (${w.targetJobsPerReplica} queued jobs, a batch of events being one) is used: remove the old field`;
}

function withDeprecationNote(
  result: WorkerScalingResult,
  bot: DiscordBot,
  before: DiscordBotStatus,
): WorkerScalingResult {
  const note = deprecationNote(bot);
  // Autoscaler None sizes nothing from it: no condition to carry the note.
  if (!note || !result.condition) return result;
  const was = before.conditions?.find((c) => c.type === 'WorkersScaled');
  const event: [EventType, string, string][] = was?.message?.includes(note)
    ? []
    : [['Warning', 'DeprecatedField', note]];
  return {
    ...result,
    condition: { ...result.condition, message: `${result.condition.message}. ${note}` },
    events: [...result.events, ...event],
  };
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class WorkerScaling {
  private readonly history = new Map<string, Recommendation[]>();
  /** Hashes of the KEDA objects last applied per bot (no informer watches KEDA's kinds). */
  private readonly kedaApplied = new Map<string, string>();

  constructor(private readonly deps: WorkerScalingDeps) {}

  forget(key: string, namespace: string, name: string): void {
    this.history.delete(key);
    this.kedaApplied.delete(key);
    this.deps.backlog.forget(key);
    this.deps.metrics.forgetAutoscaling(namespace, name);
  }

  /** Runs before the Deployment is applied: its result says whether to render replicas. */
  async step(input: WorkerScalingInput): Promise<WorkerScalingResult> {
    const { bot, key, deployment, before } = input;
    const mode = bot.spec.worker.autoscaler;
    const previous = before.workers?.autoscaler;
    if (mode !== 'Builtin') {
      this.history.delete(key);
      this.deps.backlog.forget(key);
      this.deps.metrics.forgetAutoscaling(bot.metadata.namespace, bot.metadata.name);
      await this.handOverReplicas(deployment);
    }
    const events: [EventType, string, string][] = [];
    const leaving = previous === 'KEDA' && mode !== 'KEDA';
    // Forgotten as soon as leaving starts: a partial removal must not pass for applied objects
    // if the bot goes back to KEDA.
    if (leaving) this.kedaApplied.delete(key);
    const leftBehind = leaving ? await this.removeKeda(bot) : undefined;
    if (leaving && !leftBehind) {
      events.push([
        'Normal',
        'ScaledObjectRemoved',
        `Removed ScaledObject ${workerName(bot)}: autoscaler is now ${mode}`,
      ]);
    }
    const result =
      mode === 'Builtin'
        ? await this.builtin(input)
        : mode === 'KEDA'
          ? await this.keda(input)
          : { workers: { autoscaler: 'None' as const }, events: [] };
    const scaled = leftBehind
      ? this.kedaLeftBehind(result, leftBehind, before)
      : { ...result, events: [...events, ...result.events] };
    return withDeprecationNote(scaled, bot, before);
  }

  /**
   * The new mode runs, but KEDA's objects could not be deleted: WorkersScaled says so, and the
   * status still names KEDA as set up, so the next pass tries the removal again. Replicas stay
   * KEDA's meanwhile (its ScaledObject still drives them: two autoscalers would fight).
   */
  private kedaLeftBehind(
    result: WorkerScalingResult,
    refusal: KedaRefusal,
    before: DiscordBotStatus,
  ): WorkerScalingResult {
    const { replicas: _keda, ...rest } = result;
    return {
      ...rest,
      workers: { ...result.workers, autoscaler: 'KEDA' },
      condition: { type: 'WorkersScaled', status: 'False', ...refusal },
      events: [...firstWarning(before, refusal.reason, refusal.message), ...result.events],
      requeueAfterMs: Math.min(result.requeueAfterMs ?? Infinity, this.deps.intervalMs),
    };
  }

  private async builtin({ key, bot, redisUrl, deployment, before, now, legacyKeys }: WorkerScalingInput) {
    const w = bot.spec.worker;
    const labels = { namespace: bot.metadata.namespace, name: bot.metadata.name };
    const current = deployment?.spec?.replicas ?? w.minReplicas;
    const events: [EventType, string, string][] = [];
    let backlog: number;
    try {
      backlog = backlogOf(
        await this.deps.backlog.read(
          key,
          bot.metadata,
          redisUrl,
          now.getTime(),
          legacyKeys ?? false,
          bot.spec.redis.eventPartitions,
        ),
      );
    } catch (err) {
      if (!(err instanceof RedisUnavailableError)) throw err;
      const replicas = clampReplicas(current, w);
      const ref = bot.spec.redis.urlSecretRef;
      const message = `Cannot read the job backlog from Redis (Secret ${bot.metadata.namespace}/${ref.name} key "${ref.key}"): ${err.message}; workers stay at ${replicas}`;
      const was = before.conditions?.find((c) => c.type === 'WorkersScaled');
      if (was?.status !== 'False' || was.reason !== 'RedisUnavailable')
        events.push(['Warning', 'RedisUnavailable', message]);
      return {
        replicas,
        workers: {
          autoscaler: 'Builtin' as const,
          backlog: before.workers?.backlog ?? 0,
          desiredReplicas: replicas,
          ...(before.workers?.lastScaleTime ? { lastScaleTime: before.workers.lastScaleTime } : {}),
        },
        condition: { type: 'WorkersScaled', status: 'False', reason: 'RedisUnavailable', message } as const,
        events,
        requeueAfterMs: this.deps.intervalMs,
      };
    }
    const decision = decideReplicas({
      settings: w,
      backlog,
      currentReplicas: current,
      now: now.getTime(),
      history: this.history.get(key) ?? [],
    });
    this.history.set(key, decision.history);
    let lastScaleTime = before.workers?.lastScaleTime;
    const basis = `backlog ${backlog}, target ${w.targetJobsPerReplica} jobs per replica, bounds ${w.minReplicas}..${w.maxReplicas}`;
    if (deployment && decision.replicas !== current) {
      lastScaleTime = iso(now.getTime());
      events.push([
        'Normal',
        decision.replicas > current ? 'ScaledUp' : 'ScaledDown',
        `Scaled workers from ${current} to ${decision.replicas} (${basis})`,
      ]);
    }
    this.deps.metrics.workerBacklog.set(labels, backlog);
    this.deps.metrics.workerDesiredReplicas.set(labels, decision.replicas);
    const message =
      decision.reason === 'StabilizingScaleDown'
        ? `${decision.replicas} workers; the backlog asks for ${decision.recommended}, so they go down at ${iso(decision.scaleDownAt!)} unless demand rises (${basis})`
        : `${decision.replicas} workers (${basis})`;
    const untilScaleDown = decision.scaleDownAt
      ? Math.max(100, decision.scaleDownAt - now.getTime())
      : Infinity;
    return {
      replicas: decision.replicas,
      workers: {
        autoscaler: 'Builtin' as const,
        backlog,
        desiredReplicas: decision.replicas,
        ...(lastScaleTime ? { lastScaleTime } : {}),
      },
      condition: { type: 'WorkersScaled', status: 'True', reason: decision.reason, message } as const,
      events,
      requeueAfterMs: Math.min(this.deps.intervalMs, untilScaleDown),
    };
  }

  private async keda({
    key,
    bot,
    redis,
    before,
    legacyKeys,
  }: WorkerScalingInput): Promise<WorkerScalingResult> {
    const events: [EventType, string, string][] = [];
    const fail = (reason: string, message: string): WorkerScalingResult => {
      events.push(...firstWarning(before, reason, message));
      return {
        workers: { ...(before.workers?.autoscaler === 'KEDA' ? { autoscaler: 'KEDA' as const } : {}) },
        condition: { type: 'WorkersScaled', status: 'False', reason, message },
        events,
        // Installing KEDA or fixing the Secret wakes nothing the operator watches: look again.
        requeueAfterMs: this.deps.intervalMs,
      };
    };
    const conn = kedaConnection(redis);
    const secret = withSpecHash(renderKedaAuthSecret(bot, conn) as RenderedObject);
    const live = this.deps.getSecret(bot.metadata.namespace, secret.metadata.name);
    const kedaObjects = [
      renderTriggerAuthentication(bot, conn),
      renderScaledObject(bot, conn, legacyKeys ?? false),
    ].map((o) => withSpecHash(o as RenderedObject));
    const hash = kedaObjects.map((o) => o.metadata.annotations![SPEC_HASH_ANNOTATION]).join(',');
    const toApply = [
      ...(live?.metadata?.annotations?.[SPEC_HASH_ANNOTATION] !==
      secret.metadata.annotations?.[SPEC_HASH_ANNOTATION]
        ? [secret]
        : []),
      ...(this.kedaApplied.get(key) !== hash || before.workers?.autoscaler !== 'KEDA' ? kedaObjects : []),
    ];
    const refusal = await this.applyKedaObjects(toApply);
    if (refusal) return fail(refusal.reason, refusal.message);
    if (toApply.includes(kedaObjects[0]!)) this.kedaApplied.set(key, hash);
    const w = bot.spec.worker;
    return {
      workers: { autoscaler: 'KEDA' },
      condition: {
        type: 'WorkersScaled',
        status: 'True',
        reason: 'ScaledByKEDA',
        message: `ScaledObject ${workerName(bot)} scales the workers between ${w.minReplicas} and ${w.maxReplicas}, ${w.targetJobsPerReplica} waiting jobs per replica`,
      },
      events,
    };
  }

  /**
   * Applies the KEDA objects in order. KEDA not installed, or no permission for its objects (the
   * chart's `rbac.keda: false`), is the autoscaler's problem alone: reported as WorkersScaled,
   * while the gateway and the workers are still reconciled. Anything else is rethrown.
   */
  private async applyKedaObjects(objects: RenderedObject[]): Promise<KedaRefusal | undefined> {
    for (const obj of objects) {
      try {
        await this.deps.cluster.apply(obj);
      } catch (err) {
        const refusal = kedaRefusal(err, obj, 'apply');
        if (!refusal) throw err;
        return refusal;
      }
    }
    return undefined;
  }

  /**
   * Before the operator's apply omits `spec.replicas`, another field manager takes it with its
   * live value; otherwise server-side apply would reset it to 1.
   */
  private async handOverReplicas(deployment: V1Deployment | undefined): Promise<void> {
    if (!deployment?.metadata?.name || deployment.spec?.replicas === undefined) return;
    const owns = deployment.metadata.managedFields?.some(
      (m) =>
        m.manager === FIELD_MANAGER &&
        m.operation === 'Apply' &&
        !!(m.fieldsV1 as { 'f:spec'?: Record<string, unknown> } | undefined)?.['f:spec']?.['f:replicas'],
    );
    if (!owns) return;
    await this.deps.cluster.handOver(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: deployment.metadata.name, namespace: deployment.metadata.namespace },
        spec: { replicas: deployment.spec.replicas },
      } as KubernetesObject,
      HANDOVER_FIELD_MANAGER,
    );
  }

  /** Deletes what KEDA mode set up; a missing permission is returned, anything else thrown. */
  private async removeKeda(bot: DiscordBot): Promise<KedaRefusal | undefined> {
    const meta = { name: workerName(bot), namespace: bot.metadata.namespace };
    const objects = [
      { apiVersion: KEDA_API_VERSION, kind: 'ScaledObject', metadata: meta },
      { apiVersion: KEDA_API_VERSION, kind: 'TriggerAuthentication', metadata: meta },
      { apiVersion: 'v1', kind: 'Secret', metadata: { ...meta, name: kedaAuthSecretName(bot) } },
    ];
    for (const obj of objects) {
      try {
        await this.deps.cluster.delete(obj);
      } catch (err) {
        const refusal = apiserverCode(err) === 403 ? kedaRefusal(err, obj, 'delete') : undefined;
        if (!refusal) throw err;
        return refusal;
      }
    }
    return undefined;
  }
}
