// The reconcile loop for one DiscordBot: read desired state (spec, Secrets, Discord's
// recommendation), plan, server-side apply what differs, observe, write status if it changed.
// Level-triggered: it never depends on what event woke it.
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1PodDisruptionBudget,
  V1Secret,
  V1Service,
  V1StatefulSet,
} from '@kubernetes/client-node';
import {
  parseRedisTarget,
  RedisTargetError,
  type RedisTarget,
} from '../../bot/configuration/redis-target.js';
import type { Logger } from '../../bot/observability/logger.js';
import { secretReferences, type PodComponent } from '../api/v1alpha1/secret-references.js';
import type { DiscordBot, DiscordBotStatus, SecretKeyRef } from '../api/v1alpha1/types.js';
import { parseDuration } from '../config/duration.js';
import type { ReconcileResult } from '../controller/work-queue.js';
import type { DiscordLookup, GatewayBotCache, GatewayBotInfo } from '../discord/gateway-bot.js';
import { apiserverCode, describeError, type Cluster } from '../kube/cluster.js';
import type { OperatorMetrics } from '../metrics/operator-metrics.js';
import { planShards, samePlan, type ShardPlan } from '../planning/shard-plan.js';
import {
  mustRecreate,
  renderDesiredObjects,
  secretsChecksum,
  unwantedObjects,
  type RenderedObject,
} from '../rendering/desired-objects.js';
import { gatewayName } from '../rendering/gateway.js';
import { SPEC_HASH_ANNOTATION } from '../rendering/labels.js';
import type { GenerationPlan } from '../rendering/plan-config.js';
import { workerName } from '../rendering/worker.js';
import { planReshard, type ReshardState } from '../resharding/reshard-planner.js';
import { firstDifference, repairPatch } from './drift.js';
import { conditionOf, setCondition, withoutCondition } from './conditions.js';
import {
  deferredMessage,
  eventPartitionsToApply,
  runningEventPartitions,
  withEventPartitions,
} from './event-partitions-roll.js';
import { generationReadiness, reshardProgressing, staleGatewayObjects } from './gateway-generations.js';
import { ReconcilePass } from './reconcile-pass.js';
import { readSecretKey } from './secrets.js';
import { stableJson } from './stable-json.js';
import type { WorkerScaling } from './worker-scaling.js';

/**
 * Errors that say nothing about the object: no answer, a conflict with a newer version (the retry
 * sees it), the apiserver throttling or failing. They are retried with back-off, not reported as
 * the object being refused; a failing admission webhook is a refusal.
 */
function transient(err: unknown): boolean {
  const code = apiserverCode(err);
  if (code === undefined || code === 409 || code === 429) return true;
  return code >= 500 && !/webhook/i.test(describeError(err));
}

/** The kinds of object a bot owns, and their client-node models. */
export interface OwnedObjects {
  StatefulSet: V1StatefulSet;
  Deployment: V1Deployment;
  Service: V1Service;
  ConfigMap: V1ConfigMap;
  PodDisruptionBudget: V1PodDisruptionBudget;
}
export type OwnedKind = keyof OwnedObjects;

export interface ReconcilerDeps {
  getBot(namespace: string, name: string): DiscordBot | undefined;
  /** Whether a DiscordBot of this name exists in another namespace (see ENV.legacyKeys). */
  sameNameElsewhere(namespace: string, name: string): boolean;
  getSecret(namespace: string, name: string): V1Secret | undefined;
  getOwned<K extends OwnedKind>(kind: K, namespace: string, name: string): OwnedObjects[K] | undefined;
  /** The objects of this kind in `namespace` whose controller is the object with `ownerUid`. */
  listOwned(kind: OwnedKind, namespace: string, ownerUid: string): readonly KubernetesObject[];
  cluster: Cluster;
  discord: GatewayBotCache;
  metrics: OperatorMetrics;
  discordApiUrl: string;
  /** Sizes the worker Deployment (autoscaler modes). */
  workerScaling: WorkerScaling;
  log: Logger;
  now?: () => Date;
}

const describePlan = (p: ShardPlan) =>
  `${p.shards} shard${p.shards === 1 ? '' : 's'} over ${p.pods} pod${p.pods === 1 ? '' : 's'}`;

/** Step 1's result: the referenced Secrets' values and, per component, their checksum. */
interface SecretValues {
  valueOf(ref: SecretKeyRef): string;
  /** The Redis Secret's value, parsed. */
  redis: RedisTarget;
  checksums: Record<PodComponent, string>;
}

/** Step 3's result. */
interface PlannedGenerations {
  /** What Discord's answer and the spec ask for now. */
  desiredPlan: ShardPlan;
  decision: ReturnType<typeof planReshard>;
  /** The generation serving now and its plan. */
  active: GenerationPlan;
  /** Whether generation g's StatefulSet runs `plan` and is ready. */
  readiness(g: number, plan: ShardPlan): ReturnType<typeof generationReadiness>;
  applicationId: string;
}

/** Step 4's result. */
interface AppliedObjects {
  deployment: V1Deployment | undefined;
  scaling: Awaited<ReturnType<WorkerScaling['step']>>;
  /** The apiserver's words for each object it refused. */
  refused: string[];
}

/** The status fields (conditions by type) that differ, for the log of why a status is written. */
function changedFields(was: DiscordBotStatus, is: DiscordBotStatus): string[] {
  const fields = (s: DiscordBotStatus) => {
    const { conditions, ...rest } = s;
    return {
      ...rest,
      ...Object.fromEntries((conditions ?? []).map((c) => [`conditions.${c.type}`, c])),
    } as Record<string, unknown>;
  };
  const a = fields(was);
  const b = fields(is);
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter(
    (k) => stableJson(a[k]) !== stableJson(b[k]),
  );
}

export class DiscordBotReconciler {
  /**
   * The status we last wrote per bot and the resourceVersion it was based on. The informer
   * cache lags our own writes; while it still shows that version, ours is the truth (no double
   * Events, no rewrites).
   */
  private readonly written = new Map<string, { basedOn: string | undefined; status: DiscordBotStatus }>();

  /**
   * Per bot, owned objects that an apply left differing from the rendering (see converge), by
   * kind/name: the spec hash and resourceVersion that apply produced.
   */
  private readonly settled = new Map<string, Map<string, string>>();

  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const bot = this.deps.getBot(namespace, name);
    if (!bot || bot.metadata.deletionTimestamp) {
      this.forget(key, namespace, name);
      return {};
    }
    const pass = this.begin(key, bot);
    try {
      return await this.run(pass);
    } catch (err) {
      // A pass that fails before its status is written still says, on the first visit, that
      // the bot is being looked at (the error itself is retried with the queue's back-off).
      await this.sayLooking(pass);
      throw err;
    }
  }

  private async run(pass: ReconcilePass): Promise<ReconcileResult> {
    const { bot } = pass;
    const secrets = this.readSecrets(pass);
    if (!secrets) return this.finish(pass, {});
    const discord = await this.askDiscord(pass, secrets.valueOf(bot.spec.tokenSecretRef));
    if (!discord.info) return this.finish(pass, discord.result);
    const planned = this.planGenerations(pass, discord.info, discord.lookup, secrets);
    const applied = await this.applyOwnedObjects(pass, planned, secrets);
    this.observe(pass, discord.lookup, discord.info, planned, applied);
    if (applied.refused.length > 0) {
      // What the apiserver refused is what the user must fix; retried with the queue's back-off.
      pass.degrade('ApplyFailed', applied.refused.join('; '));
      await this.finish(pass, {});
      throw new Error(applied.refused.join('; '));
    }
    return this.finish(pass, {
      requeueAfterMs: Math.min(
        discord.lookup.nextCheckMs,
        applied.scaling.requeueAfterMs ?? Infinity,
        planned.decision.requeueAfterMs ?? Infinity,
      ),
    });
  }

  /** The bot is gone: owned objects go with it through ownerReferences; only our memory is left. */
  private forget(key: string, namespace: string, name: string): void {
    this.deps.metrics.forgetBot(namespace, name);
    this.deps.discord.forget(key);
    this.deps.workerScaling.forget(key, namespace, name);
    this.written.delete(key);
    this.settled.delete(key);
  }

  /**
   * Starts a pass. On the first visit its status begins with every condition Unknown; that is
   * written with the rest of the pass's status (one write per bot on creation, not two), or
   * alone if the pass fails (sayLooking).
   */
  private begin(key: string, bot: DiscordBot): ReconcilePass {
    const { deps } = this;
    const now = deps.now?.() ?? new Date();
    const log = deps.log.child({ bot: bot.metadata.name, namespace: bot.metadata.namespace });
    const mine = this.written.get(key);
    const before = mine && mine.basedOn === bot.metadata.resourceVersion ? mine.status : (bot.status ?? {});
    const legacyKeys = !deps.sameNameElsewhere(bot.metadata.namespace, bot.metadata.name);
    const pass = new ReconcilePass(key, bot, before, before, now, log, legacyKeys);
    if ((before.conditions ?? []).length === 0) pass.status.conditions = this.firstLook(pass).conditions;
    return pass;
  }

  /** The status of a bot read for the first time: every condition Unknown. */
  private firstLook(pass: ReconcilePass): DiscordBotStatus {
    let conditions = pass.before.conditions ?? [];
    for (const type of ['Ready', 'Progressing', 'Degraded'] as const)
      conditions = setCondition(
        conditions,
        {
          type,
          status: 'Unknown',
          reason: 'Reconciling',
          message: 'Shardwarden is reading this DiscordBot for the first time',
        },
        pass.generation,
        pass.now,
      );
    return { ...pass.before, observedGeneration: pass.generation, conditions };
  }

  /** After a failed pass: the first-visit status, if this bot's status was never written. */
  private async sayLooking(pass: ReconcilePass): Promise<void> {
    if ((pass.written.conditions ?? []).length > 0 || this.written.get(pass.key)) return;
    const status = this.firstLook(pass);
    try {
      await this.deps.cluster.applyStatus(pass.bot, status);
      this.written.set(pass.key, { basedOn: pass.bot.metadata.resourceVersion, status });
    } catch (err) {
      pass.log.warn({ err: describeError(err) }, 'could not write the first status');
    }
  }

  /** Step 1: every Secret the spec references, from the informer cache; undefined when one is missing. */
  private readSecrets(pass: ReconcilePass): SecretValues | undefined {
    const { bot, namespace } = pass;
    const secrets = secretReferences(bot.spec).map((s) => ({
      ...s,
      read: readSecretKey(this.deps.getSecret(namespace, s.ref.name), namespace, s.ref, s.purpose),
    }));
    const missing = secrets.flatMap((s) => ('missing' in s.read ? [s.read.missing] : []));
    if (missing.length > 0) {
      pass.degrade(
        'SecretNotFound',
        `${missing.join('; ')}. Create it, or fix the reference in the DiscordBot`,
      );
      return undefined;
    }
    const valueOf = (ref: SecretKeyRef) => {
      const read = secrets.find((s) => s.ref === ref)?.read;
      return read && 'value' in read ? read.value : '';
    };
    // Checked for every bot, not only where the operator reads it (an autoscaler): a bad value
    // would otherwise show only as pods in CrashLoopBackOff.
    let redis: RedisTarget;
    try {
      redis = parseRedisTarget(valueOf(bot.spec.redis.urlSecretRef), 'the Redis URL');
    } catch (err) {
      if (!(err instanceof RedisTargetError)) throw err;
      const ref = bot.spec.redis.urlSecretRef;
      pass.degrade('InvalidRedisURL', `${err.message} (Secret ${namespace}/${ref.name} key "${ref.key}")`);
      return undefined;
    }
    // Pods roll when a Secret they read changes, and only then (a new database password does
    // not reconnect every shard).
    const checksumOf = (component: PodComponent) =>
      secretsChecksum(secrets.filter((s) => s.readBy.includes(component)).map((s) => valueOf(s.ref)));
    return {
      valueOf,
      redis,
      checksums: { gateway: checksumOf('gateway'), worker: checksumOf('worker') },
    };
  }

  /**
   * Step 2: Discord's recommendation (cached; invalid tokens and outages are remembered).
   * Without an answer the pass ends with `result`.
   */
  private async askDiscord(
    pass: ReconcilePass,
    token: string,
  ): Promise<{ lookup: DiscordLookup; info?: GatewayBotInfo; result: ReconcileResult }> {
    const { bot, before, now, key } = pass;
    const refreshMs = parseDuration(bot.spec.sharding.refreshInterval);
    let lookup = await this.deps.discord.lookup(key, token, refreshMs);
    if (
      before.reshard?.phase === 'WaitingForSessionBudget' &&
      lookup.info &&
      lookup.fetchedAt !== undefined &&
      now.getTime() >= lookup.fetchedAt + Math.max(5_000, lookup.info.sessionStartLimit.resetAfter)
    ) {
      // A reshard waits for the session budget and Discord has reset it since: look now rather
      // than at the next refresh.
      lookup = await this.deps.discord.lookup(key, token, refreshMs, true);
    }
    if (lookup.problem?.reason === 'InvalidToken') {
      const ref = bot.spec.tokenSecretRef;
      pass.degrade(
        'InvalidToken',
        `${lookup.problem.message} (${pass.namespace}/${ref.name} key "${ref.key}")`,
      );
      return { lookup, result: {} };
    }
    if (!lookup.info) {
      pass.degrade(
        lookup.problem?.reason ?? 'DiscordUnavailable',
        lookup.problem?.message ?? 'No answer from Discord yet',
      );
      return { lookup, result: { requeueAfterMs: lookup.nextCheckMs } };
    }
    return { lookup, info: lookup.info, result: {} };
  }

  /**
   * Step 3: the plan, and which gateway generations run it. status.plan and status.gateway say
   * what the active generation runs; a changed shard count goes through the reshard planner,
   * whose state lives in status.reshard, so a restarted operator carries on from there.
   */
  private planGenerations(
    pass: ReconcilePass,
    info: GatewayBotInfo,
    lookup: DiscordLookup,
    secrets: SecretValues,
  ): PlannedGenerations {
    const { before, namespace, now } = pass;
    const desiredPlan = planShards(pass.bot.spec.sharding, info);
    const wasActive: GenerationPlan = {
      generation: before.gateway?.generation ?? 1,
      plan: before.plan?.shards ? (before.plan as ShardPlan) : desiredPlan,
    };
    this.holdEventPartitions(pass, wasActive, desiredPlan);
    const { bot } = pass;
    const gatewayInput = {
      bot,
      discordApiUrl: this.deps.discordApiUrl,
      applicationId: info.applicationId,
      legacyKeys: pass.legacyKeys,
      secretsChecksum: secrets.checksums.gateway,
    };
    const readiness = (g: number, plan: ShardPlan) =>
      generationReadiness(this.deps.getOwned('StatefulSet', namespace, gatewayName(bot, g)), {
        ...gatewayInput,
        generation: g,
        plan,
      });
    const decision = planReshard({
      strategy: bot.spec.sharding.reshardStrategy,
      active: wasActive,
      desired: desiredPlan,
      previous: before.reshard as ReshardState | undefined,
      readiness: (g) => readiness(g, g === wasActive.generation ? wasActive.plan : desiredPlan),
      sessionStartLimit: info.sessionStartLimit,
      sessionStartLimitFetchedAt: lookup.fetchedAt ?? now.getTime(),
      now: now.getTime(),
      timeoutMs: parseDuration(bot.spec.sharding.reshardTimeout ?? '10m'),
    });
    for (const e of decision.events) pass.event(e.type, e.reason, e.message);
    // With Recreate the active generation may already be gone; it still names the old plan.
    const active: GenerationPlan = decision.run.find((r) => r.generation === decision.activeGeneration) ?? {
      generation: decision.activeGeneration,
      plan: wasActive.plan,
    };
    const recommends = `Discord recommends ${info.shards}, max_concurrency ${info.maxConcurrency}`;
    if (before.plan && !samePlan(before.plan as ShardPlan, active.plan))
      pass.event(
        'Normal',
        'PlanChanged',
        `Shard plan changed from ${describePlan(before.plan as ShardPlan)} to ${describePlan(active.plan)} (${recommends})`,
      );
    else if (!before.plan)
      pass.event('Normal', 'Planned', `Planned ${describePlan(active.plan)} (${recommends})`);
    return { desiredPlan, decision, active, readiness, applicationId: info.applicationId };
  }

  /**
   * A new event partition count waits while the shard count changes (pending or running
   * reshard): the pods keep the count the active generation runs, the condition
   * EventPartitionsDeferred says so, with a Normal Event when it starts.
   */
  private holdEventPartitions(pass: ReconcilePass, active: GenerationPlan, desired: ShardPlan): void {
    const live = this.deps.getOwned('StatefulSet', pass.namespace, gatewayName(pass.bot, active.generation));
    const roll = eventPartitionsToApply(
      pass.bot.spec.redis.eventPartitions,
      runningEventPartitions(live),
      desired.shards !== active.plan.shards,
    );
    if (!roll.deferred) {
      pass.status.conditions = withoutCondition(pass.status.conditions ?? [], 'EventPartitionsDeferred');
      return;
    }
    const message = deferredMessage(roll.deferred);
    if (conditionOf(pass.before.conditions, 'EventPartitionsDeferred')?.status !== 'True')
      pass.event('Normal', 'EventPartitionsDeferred', message);
    pass.setCondition({ type: 'EventPartitionsDeferred', status: 'True', reason: 'Resharding', message });
    pass.bot = withEventPartitions(pass.bot, roll.partitions);
  }

  /**
   * Step 4: size the workers, apply the owned objects that differ from their rendering, delete
   * what the spec no longer asks for, and queue the removal of generations no longer run.
   */
  private async applyOwnedObjects(
    pass: ReconcilePass,
    planned: PlannedGenerations,
    secrets: SecretValues,
  ): Promise<AppliedObjects> {
    const { deps } = this;
    const { bot, namespace, key, log } = pass;
    const deployment = deps.getOwned('Deployment', namespace, workerName(bot));
    const scaling = await deps.workerScaling.step({
      key,
      bot,
      redisUrl: secrets.valueOf(bot.spec.redis.urlSecretRef),
      redis: secrets.redis,
      deployment,
      before: pass.before,
      now: pass.now,
      legacyKeys: pass.legacyKeys,
    });
    for (const e of scaling.events) pass.event(...e);
    const desired = renderDesiredObjects({
      bot,
      discordApiUrl: deps.discordApiUrl,
      applicationId: planned.applicationId,
      legacyKeys: pass.legacyKeys,
      secretsChecksums: secrets.checksums,
      active: planned.active,
      gateways: planned.decision.run,
      workerReplicas: scaling.replicas,
    });
    const refused = await this.convergeAll(key, desired, log);
    for (const ref of unwantedObjects(bot)) {
      const live = deps.getOwned(ref.kind, namespace, ref.metadata.name);
      if (live?.metadata?.ownerReferences?.some((o) => o.uid === bot.metadata.uid)) {
        await deps.cluster.delete(ref);
        log.info(
          { kind: ref.kind, object: ref.metadata.name },
          'removed an object the spec no longer asks for',
        );
      }
    }
    // Generations the decision does not run go, after the status names the new active one: a
    // restart between the two then finds the status already moved on, never a missing generation
    // that the status still calls active.
    const running = new Set(planned.decision.run.map((r) => r.generation));
    const stale = staleGatewayObjects(
      bot,
      (kind) => deps.listOwned(kind, namespace, bot.metadata.uid ?? ''),
      planned.decision.remove,
      running,
    );
    for (const { generation: g, ref } of stale)
      pass.afterStatus.push(async () => {
        if (await deps.cluster.delete(ref))
          log.info(
            { generation: g, kind: ref.kind, object: ref.metadata.name },
            'removed gateway generation',
          );
      });
    return { deployment, scaling, refused };
  }
  /** Step 5: status, conditions and metrics from what the cluster shows now. */
  private observe(
    pass: ReconcilePass,
    lookup: DiscordLookup,
    info: GatewayBotInfo,
    planned: PlannedGenerations,
    applied: AppliedObjects,
  ): void {
    const { bot, namespace, name, status } = pass;
    const { active, decision, desiredPlan } = planned;
    const { deployment, scaling } = applied;
    const plan = active.plan;
    const sts = this.deps.getOwned('StatefulSet', namespace, gatewayName(bot, active.generation));
    const stsCurrent = !!sts && (sts.status?.observedGeneration ?? 0) >= (sts.metadata?.generation ?? 0);
    const readyPods = sts?.status?.readyReplicas ?? 0;
    const updatedPods = sts?.status?.updatedReplicas ?? 0;
    const gatewayReady =
      stsCurrent &&
      readyPods >= plan.pods &&
      updatedPods >= plan.pods &&
      (sts?.spec?.replicas ?? 0) === plan.pods;
    // Ready needs the floor of workers; replicas an autoscaler adds on top are not required.
    const readyWorkers = deployment?.status?.readyReplicas ?? 0;
    const workersReady =
      !!deployment && readyWorkers >= Math.min(bot.spec.worker.minReplicas, scaling.replicas ?? 0);
    Object.assign(status, {
      shards: plan.shards,
      recommendedShards: info.shards,
      maxConcurrency: info.maxConcurrency,
      sessionStartLimit: info.sessionStartLimit,
      lastDiscordSync: new Date(lookup.fetchedAt ?? pass.now.getTime())
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z'),
      plan,
      gateway: { generation: active.generation, pods: plan.pods, readyPods },
      workers: {
        replicas: deployment?.status?.replicas ?? 0,
        readyReplicas: readyWorkers,
        ...scaling.workers,
      },
    } satisfies DiscordBotStatus);
    if (decision.state) status.reshard = decision.state;
    else delete status.reshard;
    if (lookup.problem)
      pass.setCondition({
        type: 'Degraded',
        status: 'True',
        reason: lookup.problem.reason,
        message: `${lookup.problem.message}; using Discord's answer from ${new Date(lookup.fetchedAt!).toISOString()}`,
      });
    else
      pass.setCondition({ type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'No problems' });
    status.conditions = scaling.condition
      ? setCondition(status.conditions ?? [], scaling.condition, pass.generation, pass.now)
      : withoutCondition(status.conditions ?? [], 'WorkersScaled');
    if (gatewayReady && workersReady) {
      pass.setCondition({
        type: 'Ready',
        status: 'True',
        reason: 'AllShardsReady',
        message: `${readyPods}/${plan.pods} gateway pods ready for ${plan.shards} shards; ${readyWorkers} workers ready`,
      });
      pass.setCondition({
        type: 'Progressing',
        status: 'False',
        reason: 'Stable',
        message: 'Everything matches the plan',
      });
    } else {
      const message = `${readyPods}/${plan.pods} gateway pods ready, ${readyWorkers}/${scaling.replicas ?? '?'} workers ready`;
      pass.setCondition({
        type: 'Ready',
        status: 'False',
        reason: gatewayReady ? 'WorkersNotReady' : 'GatewayNotReady',
        message,
      });
      pass.setCondition({ type: 'Progressing', status: 'True', reason: 'RollingOut', message });
    }
    const resharding = reshardProgressing(decision.state, desiredPlan, plan, (g) =>
      planned.readiness(g, desiredPlan),
    );
    if (resharding) pass.setCondition(resharding);

    const labels = { namespace, bot: name };
    const m = this.deps.metrics;
    m.botShards.set(labels, plan.shards);
    m.botRecommendedShards.set(labels, info.shards);
    m.botGatewayPods.set(labels, plan.pods);
    m.botGatewayPodsReady.set(labels, readyPods);
    m.botSessionStartsRemaining.set(labels, info.sessionStartLimit.remaining);
    m.botWorkerReplicas.set(labels, deployment?.status?.replicas ?? 0);
    m.botGatewayGeneration.set(labels, status.gateway?.generation ?? 1);
    const phase = decision.state?.phase;
    m.botResharding.set(
      labels,
      phase === 'StartingNewGeneration' || phase === 'WaitingForSessionBudget' ? 1 : 0,
    );
  }

  /** Writes the status if it changed, then the deletions that wait for it, then the Events. */
  private async finish(pass: ReconcilePass, result: ReconcileResult): Promise<ReconcileResult> {
    const { bot, key, log, status } = pass;
    pass.noteRecovery();
    if (stableJson(status) !== stableJson(pass.written)) {
      log.debug({ changed: changedFields(pass.written, status) }, 'writing status');
      await this.deps.cluster.applyStatus(bot, status);
      this.written.set(key, { basedOn: bot.metadata.resourceVersion, status });
    }
    for (const step of pass.afterStatus) await step();
    for (const [type, reason, message] of pass.events) {
      log.info({ reason, message }, 'event');
      await this.deps.cluster
        .event(bot, type, reason, message)
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not record an Event'));
    }
    return result;
  }

  /**
   * Converges the rendered objects: the plan ConfigMap first, which the pods read, then the
   * rest side by side (none needs another to exist), so a new bot waits for two round trips
   * to the apiserver, not seven. Returns the refusals in rendering order; transient errors are
   * thrown once every request has been answered, all of them in one message (the log of the
   * retried pass names each object that failed, not just the first).
   */
  private async convergeAll(key: string, desired: RenderedObject[], log: Logger): Promise<string[]> {
    const first = desired.filter((o) => o.kind === 'ConfigMap');
    const rest = desired.filter((o) => o.kind !== 'ConfigMap');
    const outcomes: PromiseSettledResult<string | undefined>[] = [];
    for (const wave of [first, rest])
      outcomes.push(...(await Promise.allSettled(wave.map((obj) => this.converge(key, obj, log)))));
    const errors = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, errors.map(describeError).join('; '));
    return outcomes.flatMap((o) => (o.status === 'fulfilled' && o.value ? [o.value] : []));
  }

  /**
   * Applies one owned object when the live one lacks a field as rendered (created, changed in
   * the spec, or edited by hand); an object that carries them all costs no request. Returns the
   * apiserver's reason when it refuses the object.
   */
  private async converge(key: string, obj: RenderedObject, log: Logger): Promise<string | undefined> {
    const { namespace, name } = obj.metadata;
    const live = this.deps.getOwned(obj.kind as OwnedKind, namespace, name);
    const hash = obj.metadata.annotations?.[SPEC_HASH_ANNOTATION];
    // One map per bot, made before any await: this bot's objects converge side by side.
    let settled = this.settled.get(key);
    if (!settled) this.settled.set(key, (settled = new Map<string, string>()));
    const id = `${obj.kind}/${name}`;
    if (live && settled.get(id) === `${hash}@${live.metadata?.resourceVersion}`) return undefined;
    const settle = (version: string | undefined) => settled.set(id, `${hash}@${version}`);
    const field = live ? firstDifference(obj, live) : undefined;
    // As rendered: the next pass over this version costs a lookup, not a walk of the object.
    if (live && !field) {
      settle(live.metadata?.resourceVersion);
      return undefined;
    }
    // Same rendering as before, yet different: someone edited the object.
    const edited = live?.metadata?.annotations?.[SPEC_HASH_ANNOTATION] === hash;
    if (edited) log.info({ kind: obj.kind, object: name, field }, 'restoring a field changed by hand');
    else log.debug({ kind: obj.kind, object: name }, 'applying');
    let result: KubernetesObject | undefined;
    let refusal: unknown;
    try {
      // A Service's clusterIP cannot change in place (a metrics Service turned headless).
      if (mustRecreate(obj, live)) await this.deps.cluster.delete(obj);
      result = await this.deps.cluster.apply(obj);
    } catch (err) {
      // 409: the object moved on since our cache; the retry sees the new version.
      if (transient(err)) throw err;
      refusal = err;
    }
    // An edited key of a keyed list (a Service port number) leaves the edited item beside ours,
    // or makes the apply invalid (two ports named http): a merge patch replaces that list.
    const base = edited ? (result ?? (apiserverCode(refusal) === 422 ? live : undefined)) : undefined;
    const patch = base && repairPatch(obj, base);
    if (base && patch) {
      log.info(
        { kind: obj.kind, object: name, field: firstDifference(obj, base) },
        'replacing an edited list',
      );
      const target = {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        metadata: { name, namespace, resourceVersion: base.metadata?.resourceVersion },
      };
      result = await this.deps.cluster.mergePatch(target, patch).catch((err: unknown) => {
        if (transient(err)) throw err;
        refusal ??= err;
        return undefined;
      });
    }
    if (!result) return `${obj.kind} ${namespace}/${name} was refused: ${describeError(refusal)}`;
    // A field the apiserver stores in a form the comparison does not know would look changed
    // forever: remember that this version already is what applying gives, so idle stays idle.
    settle(result.metadata?.resourceVersion);
    return undefined;
  }
}
