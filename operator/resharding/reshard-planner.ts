// The reshard state machine: a pure function from the running generation, the wanted plan,
// Discord's session budget and what the generations' pods report, to which gateway
// generations should exist and what status.reshard says. The reconciler calls it on every pass
// with status.reshard as `previous`, so an operator restart resumes where the status says.
import type { ReshardStatus, ShardingSpec } from '../api/v1alpha1/types.js';
import type { ShardPlan } from '../planning/shard-plan.js';

export type ReshardStrategy = ShardingSpec['reshardStrategy'];

/** status.reshard, as the CRD schema defines it. */
export type ReshardState = ReshardStatus;
export type ReshardPhase = ReshardState['phase'];

export interface GenerationReadiness {
  /** Pods the generation's StatefulSet wants. */
  pods: number;
  /** Pods Ready (every shard of a pod is up when the pod is Ready). */
  readyPods: number;
}

export interface ReshardInput {
  strategy: ReshardStrategy;
  /** The generation serving now and the plan it runs. */
  active: { generation: number; plan: ShardPlan };
  desired: ShardPlan;
  previous?: ReshardState;
  readiness: (generation: number) => GenerationReadiness | undefined;
  /** Discord's session start budget at the last read (resetAfter in ms from fetchedAt). */
  sessionStartLimit: { remaining: number; resetAfter: number };
  sessionStartLimitFetchedAt: number;
  now: number;
  timeoutMs: number;
}

export interface ReshardDecision {
  /** Gateway generations to render, each with its plan. */
  run: { generation: number; plan: ShardPlan }[];
  /** Generations whose StatefulSets must go. */
  remove: number[];
  /** The generation serving after this step. */
  activeGeneration: number;
  state?: ReshardState;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
  requeueAfterMs?: number;
}

/** Session starts to keep spare beyond the new shards: a tenth of them, at least 5. */
export const sessionBudgetMargin = (shards: number) => Math.max(5, Math.ceil(shards / 10));

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function allReady(r: GenerationReadiness | undefined, plan: ShardPlan): boolean {
  return !!r && r.pods === plan.pods && r.readyPods >= plan.pods;
}

export function planReshard(input: ReshardInput): ReshardDecision {
  const { active, desired, previous, now } = input;
  const from = active.generation;
  const to = from + 1;
  const keep = (extra: Partial<ReshardDecision> = {}): ReshardDecision => ({
    run: [{ generation: from, plan: active.plan }],
    remove: [],
    activeGeneration: from,
    events: [],
    ...extra,
  });
  // While the new generation starts: BlueGreen keeps the old one serving, Recreate removes it.
  const startingLayout = () => ({
    run: [
      ...(input.strategy === 'BlueGreen' ? [{ generation: from, plan: active.plan }] : []),
      { generation: to, plan: desired },
    ],
    remove: input.strategy === 'Recreate' ? [from] : [],
    activeGeneration: from,
  });
  // Only a changed shard count needs a new generation; other plan changes roll in place.
  if (desired.shards === active.plan.shards) {
    const stale = previous?.phase === 'StartingNewGeneration' ? [previous.toGeneration] : [];
    // Complete and RolledBack stay as history; a wait or a pending manual change is moot now.
    const history = previous?.phase === 'Complete' || previous?.phase === 'RolledBack';
    return {
      ...keep(),
      run: [{ generation: from, plan: desired }],
      remove: stale,
      state: history ? previous : undefined,
      events: stale.length
        ? [
            {
              type: 'Normal',
              reason: 'ReshardCancelled',
              message: `The target is back to ${desired.shards} shards; removed generation ${stale[0]}`,
            },
          ]
        : [],
    };
  }
  const base = {
    fromGeneration: from,
    toGeneration: to,
    fromShards: active.plan.shards,
    toShards: desired.shards,
  };
  const since = (phase: ReshardPhase) =>
    previous?.phase === phase && previous.toShards === desired.shards ? previous.phaseSince : iso(now);
  const change = `${active.plan.shards} to ${desired.shards} shards`;

  if (input.strategy === 'Manual') {
    const message = `The plan needs ${change} (generation ${from} → ${to}); strategy Manual: change spec.sharding.reshardStrategy, or set Fixed shards, to proceed`;
    const events =
      previous?.phase === 'ManualActionRequired' && previous.toShards === desired.shards
        ? []
        : [{ type: 'Warning' as const, reason: 'ReshardNeeded', message }];
    return keep({
      state: { ...base, phase: 'ManualActionRequired', phaseSince: since('ManualActionRequired'), message },
      events,
    });
  }

  // A rollback waits one timeout before the next attempt, so a failing generation is not hot-looped.
  if (previous?.phase === 'RolledBack' && previous.toShards === desired.shards) {
    const retryAt = Date.parse(previous.phaseSince) + input.timeoutMs;
    if (now < retryAt) return keep({ state: previous, requeueAfterMs: retryAt - now });
  }

  if (previous?.phase === 'StartingNewGeneration' && previous.toGeneration === to) {
    if (previous.toShards !== desired.shards) {
      // The target moved while starting: drop the half-started generation and begin again.
      return keep({
        remove: [to],
        events: [
          {
            type: 'Normal',
            reason: 'ReshardRestarted',
            message: `Target changed to ${desired.shards} shards; restarting the reshard`,
          },
        ],
        requeueAfterMs: 1_000,
      });
    }
    const started = Date.parse(previous.startedAt ?? previous.phaseSince);
    if (allReady(input.readiness(to), desired)) {
      const message = `Generation ${to} (${desired.shards} shards) is Ready; generation ${from} removed`;
      return {
        run: [{ generation: to, plan: desired }],
        remove: [from],
        activeGeneration: to,
        state: { ...base, phase: 'Complete', startedAt: previous.startedAt, phaseSince: iso(now), message },
        events: [
          {
            type: 'Normal',
            reason: 'ReshardComplete',
            message: `Resharded from ${change} in ${Math.round((now - started) / 1000)} s`,
          },
        ],
      };
    }
    if (now - started > input.timeoutMs) {
      const r = input.readiness(to);
      const message = `Generation ${to} was not Ready within ${Math.round(input.timeoutMs / 1000)} s (${r?.readyPods ?? 0}/${desired.pods} pods Ready); rolled back to generation ${from}, retrying after the same time`;
      return keep({
        remove: [to],
        state: { ...base, phase: 'RolledBack', startedAt: previous.startedAt, phaseSince: iso(now), message },
        events: [{ type: 'Warning', reason: 'ReshardRolledBack', message }],
        requeueAfterMs: input.timeoutMs,
      });
    }
    return {
      ...startingLayout(),
      state: previous,
      events: [],
      requeueAfterMs: 2_000,
    };
  }

  // Not started: is there session budget for the new shards?
  const need = desired.shards + sessionBudgetMargin(desired.shards);
  const { remaining, resetAfter } = input.sessionStartLimit;
  if (remaining < need) {
    const resetAt = input.sessionStartLimitFetchedAt + resetAfter;
    const message = `Resharding from ${change} needs ${need} session starts (${desired.shards} + margin ${need - desired.shards}); Discord allows ${remaining} until ${iso(resetAt)}`;
    const events =
      previous?.phase === 'WaitingForSessionBudget' && previous.toShards === desired.shards
        ? []
        : [{ type: 'Warning' as const, reason: 'ReshardWaitingForSessionBudget', message }];
    return keep({
      state: {
        ...base,
        phase: 'WaitingForSessionBudget',
        phaseSince: since('WaitingForSessionBudget'),
        message,
      },
      events,
      requeueAfterMs: Math.max(1_000, resetAt - now),
    });
  }
  const message =
    input.strategy === 'BlueGreen'
      ? `Starting generation ${to} with ${desired.shards} shards beside generation ${from}`
      : `Replacing generation ${from} with generation ${to} (${desired.shards} shards); shards are offline until it is Ready`;
  return {
    ...startingLayout(),
    state: { ...base, phase: 'StartingNewGeneration', startedAt: iso(now), phaseSince: iso(now), message },
    events: [{ type: 'Normal', reason: 'ReshardStarted', message }],
    requeueAfterMs: 2_000,
  };
}
