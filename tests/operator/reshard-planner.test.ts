import {
  eventPartitionsToApply,
  runningEventPartitions,
} from '../../operator/reconciler/event-partitions-roll.js';
import { planShards, type ShardPlan } from '../../operator/planning/shard-plan.js';
import {
  planReshard,
  sessionBudgetMargin,
  type GenerationReadiness,
  type ReshardInput,
} from '../../operator/resharding/reshard-planner.js';

const sharding = {
  mode: 'Fixed' as const,
  shards: 4,
  guildsPerShard: 1000,
  shardsPerPod: 2,
  clustersPerPod: 1,
  refreshInterval: '1h',
  reshardStrategy: 'BlueGreen' as const,
  reshardTimeout: '10m',
};
const plan = (shards: number): ShardPlan =>
  planShards({ ...sharding, shards }, { shards, maxConcurrency: 1 });
const T0 = Date.parse('2030-01-01T00:00:00Z');

function input(
  over: Partial<ReshardInput> = {},
  ready: Record<number, GenerationReadiness> = {},
): ReshardInput {
  return {
    strategy: 'BlueGreen',
    active: { generation: 1, plan: plan(4) },
    desired: plan(6),
    readiness: (g) => ready[g],
    sessionStartLimit: { remaining: 1000, resetAfter: 3_600_000 },
    sessionStartLimitFetchedAt: T0,
    now: T0,
    timeoutMs: 600_000,
    ...over,
  };
}

describe('reshard planner', () => {
  test('the same shard count rolls in place, no reshard', () => {
    const d = planReshard(input({ desired: { ...plan(4), clustersPerPod: 2 } }));
    expect(d.run).toEqual([{ generation: 1, plan: { ...plan(4), clustersPerPod: 2 } }]);
    expect(d.remove).toEqual([]);
    expect(d.state).toBeUndefined();
  });

  test('BlueGreen: N+1 beside N, then cut over once every pod of N+1 is Ready', () => {
    const start = planReshard(input());
    expect(start.run.map((r) => [r.generation, r.plan.shards])).toEqual([
      [1, 4],
      [2, 6],
    ]);
    expect(start.state).toMatchObject({ phase: 'StartingNewGeneration', fromGeneration: 1, toGeneration: 2 });
    expect(start.events.map((e) => e.reason)).toEqual(['ReshardStarted']);

    const half = planReshard(
      input({ previous: start.state, now: T0 + 5_000 }, { 2: { pods: 3, readyPods: 2 } }),
    );
    expect(half.run.map((r) => r.generation)).toEqual([1, 2]);
    expect(half.activeGeneration).toBe(1);

    const done = planReshard(
      input({ previous: start.state, now: T0 + 9_000 }, { 2: { pods: 3, readyPods: 3 } }),
    );
    expect(done.run.map((r) => r.generation)).toEqual([2]);
    expect(done.remove).toEqual([1]);
    expect(done.activeGeneration).toBe(2);
    expect(done.state).toMatchObject({ phase: 'Complete', toShards: 6 });
    expect(done.events[0]).toMatchObject({
      reason: 'ReshardComplete',
      message: 'Resharded from 4 to 6 shards in 9 s',
    });
  });

  test('too little session budget: wait, saying why and until when', () => {
    const d = planReshard(input({ sessionStartLimit: { remaining: 8, resetAfter: 60_000 } }));
    expect(sessionBudgetMargin(6)).toBe(5);
    expect(d.run.map((r) => r.generation)).toEqual([1]);
    expect(d.state).toMatchObject({ phase: 'WaitingForSessionBudget' });
    expect(d.state?.message).toBe(
      'Resharding from 4 to 6 shards needs 11 session starts (6 + margin 5); Discord allows 8 until 2030-01-01T00:01:00Z',
    );
    expect(d.requeueAfterMs).toBe(60_000);
    // Waiting again: same phaseSince, no second Event.
    const again = planReshard(
      input({ previous: d.state, now: T0 + 1_000, sessionStartLimit: { remaining: 8, resetAfter: 59_000 } }),
    );
    expect(again.state?.phaseSince).toBe(d.state?.phaseSince);
    expect(again.events).toEqual([]);
  });

  test('a timeout rolls back to N with an Event, and waits before trying again', () => {
    const start = planReshard(input());
    const late = planReshard(
      input({ previous: start.state, now: T0 + 600_001 }, { 2: { pods: 3, readyPods: 1 } }),
    );
    expect(late.run.map((r) => r.generation)).toEqual([1]);
    expect(late.remove).toEqual([2]);
    expect(late.state?.phase).toBe('RolledBack');
    expect(late.events[0]).toMatchObject({ type: 'Warning', reason: 'ReshardRolledBack' });
    const soon = planReshard(input({ previous: late.state, now: T0 + 700_000 }));
    expect(soon.state?.phase).toBe('RolledBack');
    const retry = planReshard(input({ previous: late.state, now: T0 + 1_300_000 }));
    expect(retry.state?.phase).toBe('StartingNewGeneration');
  });

  test('Recreate removes N as it starts N+1; Manual only reports', () => {
    const recreate = planReshard(input({ strategy: 'Recreate' }));
    expect(recreate.run.map((r) => r.generation)).toEqual([2]);
    expect(recreate.remove).toEqual([1]);
    const manual = planReshard(input({ strategy: 'Manual' }));
    expect(manual.run).toEqual([{ generation: 1, plan: plan(4) }]);
    expect(manual.state?.phase).toBe('ManualActionRequired');
    expect(manual.events[0]?.reason).toBe('ReshardNeeded');
  });

  test('a target back at the active count cancels: the new generation goes, a wait is dropped', () => {
    const start = planReshard(input());
    const back = planReshard(input({ previous: start.state, desired: plan(4), now: T0 + 1_000 }));
    expect(back.run.map((r) => r.generation)).toEqual([1]);
    expect(back.remove).toEqual([2]);
    expect(back.state).toBeUndefined();
    expect(back.events[0]).toMatchObject({ reason: 'ReshardCancelled' });
    const waiting = planReshard(input({ sessionStartLimit: { remaining: 0, resetAfter: 60_000 } }));
    expect(waiting.state?.phase).toBe('WaitingForSessionBudget');
    const moot = planReshard(input({ previous: waiting.state, desired: plan(4) }));
    expect(moot.state).toBeUndefined();
    expect(moot.remove).toEqual([]);
    // History stays.
    const done = planReshard(
      input({ previous: start.state, now: T0 + 9_000 }, { 2: { pods: 3, readyPods: 3 } }),
    );
    const later = planReshard(
      input({ active: { generation: 2, plan: plan(6) }, previous: done.state, desired: plan(6) }),
    );
    expect(later.state?.phase).toBe('Complete');
    expect(later.events).toEqual([]);
  });

  test('a target that moves mid-reshard drops the half-started generation', () => {
    const start = planReshard(input());
    const moved = planReshard(input({ previous: start.state, desired: plan(8), now: T0 + 1_000 }));
    expect(moved.remove).toEqual([2]);
    expect(moved.run.map((r) => r.generation)).toEqual([1]);
  });
});

describe('the event partition count during a reshard', () => {
  test('a new count waits while the shard count changes; the pods keep theirs, then it applies', () => {
    expect(eventPartitionsToApply(4, 2, true)).toEqual({
      partitions: 2,
      deferred: { wanted: 4, running: 2 },
    });
    expect(eventPartitionsToApply(4, 2, false)).toEqual({ partitions: 4 });
    expect(eventPartitionsToApply(4, 4, true)).toEqual({ partitions: 4 });
    // A bot without a gateway yet has nothing to keep.
    expect(eventPartitionsToApply(4, undefined, true)).toEqual({ partitions: 4 });
  });

  test("what a gateway StatefulSet's pods run with: 1 without the variable", () => {
    const sts = (env?: { name: string; value: string }[]) => ({
      spec: {
        selector: {},
        serviceName: 'x',
        template: { spec: { containers: [{ name: 'gateway', env }] } },
      },
    });
    expect(runningEventPartitions(undefined)).toBeUndefined();
    expect(runningEventPartitions(sts())).toBe(1);
    expect(runningEventPartitions(sts([{ name: 'SHARDWARDEN_EVENT_PARTITIONS', value: '6' }]))).toBe(6);
  });
});
