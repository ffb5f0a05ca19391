// What the reconciler reads from the gateway StatefulSets of each generation: which exist,
// whether one is Ready for the reshard planner, and what the Progressing condition says while a
// reshard is under way. Pure functions of the informer cache's objects.
import type { KubernetesObject, V1StatefulSet } from '@kubernetes/client-node';
import type { DiscordBot } from '../api/v1alpha1/types.js';
import type { ShardPlan } from '../planning/shard-plan.js';
import { withSpecHash, type RenderedObject } from '../rendering/desired-objects.js';
import { gatewayName, renderGatewayStatefulSet, type GatewayRenderInput } from '../rendering/gateway.js';
import { GENERATION_LABEL, SPEC_HASH_ANNOTATION } from '../rendering/labels.js';
import type { GenerationReadiness, ReshardState } from '../resharding/reshard-planner.js';
import type { ConditionInput } from './conditions.js';

export interface GatewayGeneration {
  generation: number;
  name: string;
  /** Already being deleted. */
  deleting: boolean;
}

/**
 * The gateway objects of one kind (StatefulSets, PodDisruptionBudgets) this bot (by UID, not by
 * name) owns, one per generation.
 */
export function gatewayGenerations(all: readonly KubernetesObject[], bot: DiscordBot): GatewayGeneration[] {
  return all.flatMap((s) => {
    const generation = Number(s.metadata?.labels?.[GENERATION_LABEL]);
    const owned = s.metadata?.ownerReferences?.some((o) => o.controller && o.uid === bot.metadata.uid);
    if (!owned || !s.metadata?.name || !Number.isInteger(generation) || generation < 1) return [];
    return [{ generation, name: s.metadata.name, deleting: !!s.metadata.deletionTimestamp }];
  });
}

/**
 * Pods wanted and Ready, counting only a StatefulSet that is exactly the one we would render
 * now and whose controller has seen it: a stale copy in the cache (a generation number reused
 * after a rollback, a template not rolled out yet) must not pass for a Ready generation.
 */
export function generationReadiness(
  sts: V1StatefulSet | undefined,
  wanted: GatewayRenderInput,
): GenerationReadiness | undefined {
  if (!sts || sts.metadata?.deletionTimestamp) return undefined;
  const hash = withSpecHash(renderGatewayStatefulSet(wanted) as RenderedObject).metadata.annotations?.[
    SPEC_HASH_ANNOTATION
  ];
  const current =
    sts.metadata?.annotations?.[SPEC_HASH_ANNOTATION] === hash &&
    (sts.status?.observedGeneration ?? 0) >= (sts.metadata?.generation ?? 1);
  const ready = Math.min(sts.status?.readyReplicas ?? 0, sts.status?.updatedReplicas ?? 0);
  return { pods: sts.spec?.replicas ?? 0, readyPods: current ? ready : 0 };
}

/** The Progressing condition while a reshard is pending; undefined when none is. */
export function reshardProgressing(
  state: ReshardState | undefined,
  desired: ShardPlan,
  active: ShardPlan,
  readiness: (generation: number) => GenerationReadiness | undefined,
): ConditionInput | undefined {
  if (!state || desired.shards === active.shards) return undefined;
  switch (state.phase) {
    case 'StartingNewGeneration': {
      const ready = readiness(state.toGeneration)?.readyPods ?? 0;
      return {
        type: 'Progressing',
        status: 'True',
        reason: 'Resharding',
        message: `${state.message}; ${ready}/${desired.pods} pods of generation ${state.toGeneration} Ready`,
      };
    }
    case 'WaitingForSessionBudget':
      return {
        type: 'Progressing',
        status: 'False',
        reason: 'WaitingForSessionBudget',
        message: state.message,
      };
    case 'ManualActionRequired':
      return { type: 'Progressing', status: 'False', reason: 'ReshardNeeded', message: state.message };
    case 'RolledBack':
      return { type: 'Progressing', status: 'False', reason: 'ReshardRolledBack', message: state.message };
    default:
      return undefined;
  }
}

/** A gateway generation's object to delete. */
export interface StaleGatewayObject {
  generation: number;
  ref: {
    apiVersion: string;
    kind: 'StatefulSet' | 'PodDisruptionBudget';
    metadata: { name: string; namespace: string };
  };
}

const GATEWAY_KINDS = [
  ['StatefulSet', 'apps/v1'],
  ['PodDisruptionBudget', 'policy/v1'],
] as const;

/**
 * The StatefulSets and PodDisruptionBudgets of gateway generations that are not to run: those
 * the reshard decision removes, and any other this bot owns (left by an interrupted reshard).
 */
export function staleGatewayObjects(
  bot: DiscordBot,
  live: (kind: StaleGatewayObject['ref']['kind']) => readonly KubernetesObject[],
  remove: readonly number[],
  running: ReadonlySet<number>,
): StaleGatewayObject[] {
  const namespace = bot.metadata.namespace;
  return GATEWAY_KINDS.flatMap(([kind, apiVersion]) => {
    const stale = new Map<number, string>(remove.map((g) => [g, gatewayName(bot, g)]));
    for (const o of gatewayGenerations(live(kind), bot)) if (!o.deleting) stale.set(o.generation, o.name);
    return [...stale]
      .filter(([generation]) => !running.has(generation))
      .map(([generation, name]) => ({
        generation,
        ref: { apiVersion, kind, metadata: { name, namespace } },
      }));
  });
}
