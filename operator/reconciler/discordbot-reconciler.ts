// The reconcile loop for one DiscordBot: read desired state (spec, Secrets, Discord's
// recommendation), plan, server-side apply what differs, observe, write status if it changed.
// Level-triggered: it never depends on what event woke it.
import type { KubernetesObject, V1Deployment, V1Secret, V1StatefulSet } from '@kubernetes/client-node';
import type { Logger } from '../../bot/observability/logger.js';
import { secretReferences, type PodComponent } from '../api/v1alpha1/secret-references.js';
import type { DiscordBot, DiscordBotStatus, SecretKeyRef } from '../api/v1alpha1/types.js';
import { parseDuration } from '../config/duration.js';
import type { ReconcileResult } from '../controller/work-queue.js';
import type { GatewayBotCache } from '../discord/gateway-bot.js';
import { apiserverCode, describeError, type Cluster, type EventType } from '../kube/cluster.js';
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
import { conditionOf, setCondition, withoutCondition, type ConditionInput } from './conditions.js';
import { generationReadiness, reshardProgressing, staleGatewayObjects } from './gateway-generations.js';
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

export type OwnedKind = 'StatefulSet' | 'Deployment' | 'Service' | 'ConfigMap' | 'PodDisruptionBudget';

export interface ReconcilerDeps {
  getBot(namespace: string, name: string): DiscordBot | undefined;
  getSecret(namespace: string, name: string): V1Secret | undefined;
  getOwned(kind: OwnedKind, namespace: string, name: string): KubernetesObject | undefined;
  /** Every object of a kind the operator manages in a namespace (informer cache). */
  listOwned(kind: OwnedKind, namespace: string): readonly KubernetesObject[];
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
    const { deps } = this;
    const bot = deps.getBot(namespace, name);
    if (!bot || bot.metadata.deletionTimestamp) {
      // Owned objects go with the bot through ownerReferences; only our memory is left.
      deps.metrics.forgetBot(namespace, name);
      deps.discord.forget(key);
      deps.workerScaling.forget(key, namespace, name);
      this.written.delete(key);
      this.settled.delete(key);
      return {};
    }
    const log = deps.log.child({ bot: name, namespace });
    const now = deps.now?.() ?? new Date();
    const generation = bot.metadata.generation ?? 0;
    const mine = this.written.get(key);
    const before = mine && mine.basedOn === bot.metadata.resourceVersion ? mine.status : (bot.status ?? {});
    let conditions = before.conditions ?? [];
    let written: DiscordBotStatus = before;
    if (conditions.length === 0) {
      // First visit: say that we are looking, before anything else can fail.
      for (const type of ['Ready', 'Progressing', 'Degraded'] as const) {
        conditions = setCondition(
          conditions,
          {
            type,
            status: 'Unknown',
            reason: 'Reconciling',
            message: 'Shardwarden is reading this DiscordBot for the first time',
          },
          generation,
          now,
        );
      }
      written = { ...before, observedGeneration: generation, conditions };
      await deps.cluster.applyStatus(bot, written);
      this.written.set(key, { basedOn: bot.metadata.resourceVersion, status: written });
    }
    const status: DiscordBotStatus = { ...before, observedGeneration: generation, conditions };
    const events: [EventType, string, string][] = [];
    /** Deletions that must follow the status write (see step 5). */
    const afterStatus: (() => Promise<void>)[] = [];
    const setCond = (c: ConditionInput) => {
      status.conditions = setCondition(status.conditions ?? [], c, generation, now);
    };
    const degrade = (reason: string, message: string) => {
      if (
        conditionOf(before.conditions, 'Degraded')?.reason !== reason ||
        conditionOf(before.conditions, 'Degraded')?.status !== 'True'
      ) {
        events.push(['Warning', reason, message]);
      }
      setCond({ type: 'Degraded', status: 'True', reason, message });
      setCond({ type: 'Ready', status: 'False', reason, message });
      setCond({
        type: 'Progressing',
        status: 'False',
        reason,
        message: 'Waiting for the problem to be fixed',
      });
    };
    const finish = async (result: ReconcileResult): Promise<ReconcileResult> => {
      const wasDegraded = conditionOf(before.conditions, 'Degraded')?.status === 'True';
      const isDegraded = conditionOf(status.conditions, 'Degraded')?.status === 'True';
      if (wasDegraded && !isDegraded)
        events.push([
          'Normal',
          'Recovered',
          `Recovered from ${conditionOf(before.conditions, 'Degraded')?.reason}`,
        ]);
      // Status is written only when it changed.
      if (stableJson(status) !== stableJson(written)) {
        await deps.cluster.applyStatus(bot, status);
        this.written.set(key, { basedOn: bot.metadata.resourceVersion, status });
      }
      for (const step of afterStatus) await step();
      for (const [type, reason, message] of events) {
        log.info({ reason, message }, 'event');
        await deps.cluster
          .event(bot, type, reason, message)
          .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not record an Event'));
      }
      return result;
    };

    // 1. Secrets: every one the spec references, read from the informer cache.
    const secrets = secretReferences(bot.spec).map((s) => ({
      ...s,
      read: readSecretKey(deps.getSecret(namespace, s.ref.name), namespace, s.ref, s.purpose),
    }));
    const missing = secrets.flatMap((s) => ('missing' in s.read ? [s.read.missing] : []));
    if (missing.length > 0) {
      degrade('SecretNotFound', `${missing.join('; ')}. Create it, or fix the reference in the DiscordBot`);
      return finish({});
    }
    const valueOf = (ref: SecretKeyRef) => {
      const read = secrets.find((s) => s.ref === ref)?.read;
      return read && 'value' in read ? read.value : '';
    };
    // Pods roll when a Secret they read changes, and only then (a new database password does
    // not reconnect every shard).
    const checksumOf = (component: PodComponent) =>
      secretsChecksum(secrets.filter((s) => s.readBy.includes(component)).map((s) => valueOf(s.ref)));
    const checksums = { gateway: checksumOf('gateway'), worker: checksumOf('worker') };
    const token = valueOf(bot.spec.tokenSecretRef);

    // 2. Discord's recommendation (cached; invalid tokens and outages are remembered).
    const refreshMs = parseDuration(bot.spec.sharding.refreshInterval);
    let discord = await deps.discord.lookup(key, token, refreshMs);
    if (
      before.reshard?.phase === 'WaitingForSessionBudget' &&
      discord.info &&
      discord.fetchedAt !== undefined &&
      now.getTime() >= discord.fetchedAt + Math.max(5_000, discord.info.sessionStartLimit.resetAfter)
    ) {
      // A reshard waits for the session budget and Discord has reset it since: look now rather
      // than at the next refresh.
      discord = await deps.discord.lookup(key, token, refreshMs, true);
    }
    if (discord.problem?.reason === 'InvalidToken') {
      degrade(
        'InvalidToken',
        `${discord.problem.message} (${namespace}/${bot.spec.tokenSecretRef.name} key "${bot.spec.tokenSecretRef.key}")`,
      );
      return finish({});
    }
    if (!discord.info) {
      degrade(
        discord.problem?.reason ?? 'DiscordUnavailable',
        discord.problem?.message ?? 'No answer from Discord yet',
      );
      return finish({ requeueAfterMs: discord.nextCheckMs });
    }
    const info = discord.info;

    // 3. The plan, and which gateway generations run it. status.plan and status.gateway say
    // what the active generation runs; a changed shard count goes through the reshard planner,
    // whose state lives in status.reshard, so a restarted operator carries on from there.
    const desiredPlan = planShards(bot.spec.sharding, info);
    const wasActive: GenerationPlan = {
      generation: before.gateway?.generation ?? 1,
      plan: before.plan?.shards ? (before.plan as ShardPlan) : desiredPlan,
    };
    const gatewayInput = {
      bot,
      discordApiUrl: deps.discordApiUrl,
      applicationId: info.applicationId,
      secretsChecksum: checksums.gateway,
    };
    const decision = planReshard({
      strategy: bot.spec.sharding.reshardStrategy,
      active: wasActive,
      desired: desiredPlan,
      previous: before.reshard as ReshardState | undefined,
      readiness: (g) =>
        generationReadiness(
          deps.getOwned('StatefulSet', namespace, gatewayName(bot, g)) as V1StatefulSet | undefined,
          { ...gatewayInput, generation: g, plan: g === wasActive.generation ? wasActive.plan : desiredPlan },
        ),
      sessionStartLimit: info.sessionStartLimit,
      sessionStartLimitFetchedAt: discord.fetchedAt ?? now.getTime(),
      now: now.getTime(),
      timeoutMs: parseDuration(bot.spec.sharding.reshardTimeout ?? '10m'),
    });
    for (const e of decision.events) events.push([e.type, e.reason, e.message]);
    // With Recreate the active generation may already be gone; it still names the old plan.
    const active: GenerationPlan = decision.run.find((r) => r.generation === decision.activeGeneration) ?? {
      generation: decision.activeGeneration,
      plan: wasActive.plan,
    };
    const plan = active.plan;
    if (before.plan && !samePlan(before.plan as ShardPlan, plan)) {
      events.push([
        'Normal',
        'PlanChanged',
        `Shard plan changed from ${describePlan(before.plan as ShardPlan)} to ${describePlan(plan)} (Discord recommends ${info.shards}, max_concurrency ${info.maxConcurrency})`,
      ]);
    } else if (!before.plan) {
      events.push([
        'Normal',
        'Planned',
        `Planned ${describePlan(plan)} (Discord recommends ${info.shards}, max_concurrency ${info.maxConcurrency})`,
      ]);
    }

    // 4. Apply the owned objects that differ from their rendering.
    const deployment = deps.getOwned('Deployment', namespace, workerName(bot)) as V1Deployment | undefined;
    const w = bot.spec.worker;
    const scaling = await deps.workerScaling.step({
      key,
      bot,
      redisUrl: valueOf(bot.spec.redis.urlSecretRef),
      deployment,
      before,
      now,
    });
    events.push(...scaling.events);
    const workerReplicas = scaling.replicas;
    const desired = renderDesiredObjects({
      bot,
      discordApiUrl: deps.discordApiUrl,
      applicationId: info.applicationId,
      secretsChecksums: checksums,
      active,
      gateways: decision.run,
      workerReplicas,
    });
    const refused: string[] = [];
    for (const obj of desired) {
      const failure = await this.converge(key, obj, log);
      if (failure) refused.push(failure);
    }
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
    const running = new Set(decision.run.map((r) => r.generation));
    const stale = staleGatewayObjects(
      bot,
      (kind) => deps.listOwned(kind, namespace),
      decision.remove,
      running,
    );
    for (const { generation: g, ref } of stale) {
      afterStatus.push(async () => {
        if (await deps.cluster.delete(ref))
          log.info(
            { generation: g, kind: ref.kind, object: ref.metadata.name },
            'removed gateway generation',
          );
      });
    }

    // 5. Observe and report.
    const sts = deps.getOwned('StatefulSet', namespace, gatewayName(bot, active.generation)) as
      V1StatefulSet | undefined;
    const stsCurrent = !!sts && (sts.status?.observedGeneration ?? 0) >= (sts.metadata?.generation ?? 0);
    const readyPods = sts?.status?.readyReplicas ?? 0;
    const updatedPods = sts?.status?.updatedReplicas ?? 0;
    const gatewayReady =
      stsCurrent &&
      readyPods >= plan.pods &&
      updatedPods >= plan.pods &&
      (sts?.spec?.replicas ?? 0) === plan.pods;
    // Ready needs the floor of workers; replicas an autoscaler adds on top are not required.
    const workersReady =
      !!deployment && (deployment.status?.readyReplicas ?? 0) >= Math.min(w.minReplicas, workerReplicas ?? 0);
    Object.assign(status, {
      shards: plan.shards,
      recommendedShards: info.shards,
      maxConcurrency: info.maxConcurrency,
      sessionStartLimit: info.sessionStartLimit,
      lastDiscordSync: new Date(discord.fetchedAt ?? now.getTime()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      plan,
      gateway: { generation: active.generation, pods: plan.pods, readyPods },
      workers: {
        replicas: deployment?.status?.replicas ?? 0,
        readyReplicas: deployment?.status?.readyReplicas ?? 0,
        ...scaling.workers,
      },
    } satisfies DiscordBotStatus);
    if (decision.state) status.reshard = decision.state;
    else delete status.reshard;
    if (discord.problem) {
      setCond({
        type: 'Degraded',
        status: 'True',
        reason: discord.problem.reason,
        message: `${discord.problem.message}; using Discord's answer from ${new Date(discord.fetchedAt!).toISOString()}`,
      });
    } else {
      setCond({ type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'No problems' });
    }
    status.conditions = scaling.condition
      ? setCondition(status.conditions ?? [], scaling.condition, generation, now)
      : withoutCondition(status.conditions ?? [], 'WorkersScaled');
    if (gatewayReady && workersReady) {
      setCond({
        type: 'Ready',
        status: 'True',
        reason: 'AllShardsReady',
        message: `${readyPods}/${plan.pods} gateway pods ready for ${plan.shards} shards; ${deployment?.status?.readyReplicas ?? 0} workers ready`,
      });
      setCond({
        type: 'Progressing',
        status: 'False',
        reason: 'Stable',
        message: 'Everything matches the plan',
      });
    } else {
      const message = `${readyPods}/${plan.pods} gateway pods ready, ${deployment?.status?.readyReplicas ?? 0}/${workerReplicas ?? '?'} workers ready`;
      setCond({
        type: 'Ready',
        status: 'False',
        reason: gatewayReady ? 'WorkersNotReady' : 'GatewayNotReady',
        message,
      });
      setCond({ type: 'Progressing', status: 'True', reason: 'RollingOut', message });
    }
    const resharding = reshardProgressing(decision.state, desiredPlan, plan, (g) =>
      generationReadiness(
        deps.getOwned('StatefulSet', namespace, gatewayName(bot, g)) as V1StatefulSet | undefined,
        { ...gatewayInput, generation: g, plan: desiredPlan },
      ),
    );
    if (resharding) setCond(resharding);
    const labels = { namespace, bot: name };
    deps.metrics.botShards.set(labels, plan.shards);
    deps.metrics.botRecommendedShards.set(labels, info.shards);
    deps.metrics.botGatewayPods.set(labels, plan.pods);
    deps.metrics.botGatewayPodsReady.set(labels, readyPods);
    deps.metrics.botSessionStartsRemaining.set(labels, info.sessionStartLimit.remaining);
    deps.metrics.botWorkerReplicas.set(labels, deployment?.status?.replicas ?? 0);
    deps.metrics.botGatewayGeneration.set(labels, status.gateway?.generation ?? 1);
    const phase = decision.state?.phase;
    deps.metrics.botResharding.set(
      labels,
      phase === 'StartingNewGeneration' || phase === 'WaitingForSessionBudget' ? 1 : 0,
    );
    if (refused.length > 0) {
      // What the apiserver refused is what the user must fix; retried with the queue's back-off.
      degrade('ApplyFailed', refused.join('; '));
      await finish({});
      throw new Error(refused.join('; '));
    }
    return finish({
      requeueAfterMs: Math.min(
        discord.nextCheckMs,
        scaling.requeueAfterMs ?? Infinity,
        decision.requeueAfterMs ?? Infinity,
      ),
    });
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
    const settled = this.settled.get(key) ?? new Map<string, string>();
    const id = `${obj.kind}/${name}`;
    if (live && settled.get(id) === `${hash}@${live.metadata?.resourceVersion}`) return undefined;
    const settle = (version: string | undefined) => {
      settled.set(id, `${hash}@${version}`);
      this.settled.set(key, settled);
    };
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
