// The figures of one cold start (benchmarks/cold-start.ts), from what was observed: when the
// pods were started, when each pod's /readyz first answered 200, and the simulator's identify
// records. Pure: no I/O, so the arithmetic can be read (and checked) apart from the run.

export interface ColdStartShape {
  shards: number;
  pods: number;
  maxConcurrency: number;
}

export interface ObservedColdStart {
  /** Epoch ms just before the pod processes were spawned. */
  startedAt: number;
  /** Epoch ms at which each pod's /readyz first answered 200. */
  podsReadyAt: number[];
  /** Accepted IDENTIFYs (refused ones are counted in `refused`), epoch ms, as the simulator saw them. */
  identifies: { at: number; shardId: number }[];
  refused: number;
  /** The simulator's identify-concurrency violations. */
  violations: number;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

/** Discord's floor for a cold start: one identify window per identify a bucket has to make. */
export function floorSeconds(shape: ColdStartShape, windowMs: number): number {
  return (Math.ceil(shape.shards / shape.maxConcurrency) * windowMs) / 1000;
}

/** The gaps between consecutive identifies of each bucket (shard id % max_concurrency). */
function bucketGaps(shape: ColdStartShape, identifies: ObservedColdStart['identifies']): number[][] {
  const byBucket = new Map<number, number[]>();
  for (const i of identifies) {
    const bucket = i.shardId % shape.maxConcurrency;
    byBucket.set(bucket, [...(byBucket.get(bucket) ?? []), i.at]);
  }
  return [...byBucket.values()].map((times) =>
    times
      .sort((a, b) => a - b)
      .slice(1)
      .map((t, k) => t - times[k]!),
  );
}

export function coldStartFigures(shape: ColdStartShape, windowMs: number, seen: ObservedColdStart) {
  const allReadyAt = Math.max(...seen.podsReadyAt);
  const times = seen.identifies.map((i) => i.at).sort((a, b) => a - b);
  const first = times[0] ?? allReadyAt;
  const last = times.at(-1) ?? allReadyAt;
  const floor = floorSeconds(shape, windowMs);
  const readySeconds = seconds(allReadyAt - seen.startedAt);
  const gaps = bucketGaps(shape, seen.identifies).flat();
  // The identifies a bucket has to make one after another, each a window after the one before.
  const sequentialWindows = Math.ceil(shape.shards / shape.maxConcurrency) - 1;
  return {
    ...shape,
    readySeconds,
    floorSeconds: floor,
    ratio: Number((readySeconds / floor).toFixed(3)),
    identifies: seen.identifies.length,
    distinctShardsIdentified: new Set(seen.identifies.map((i) => i.shardId)).size,
    refusedIdentifies: seen.refused,
    violations: seen.violations,
    // Where the time went: before the first IDENTIFY (processes, clusters, login, HELLO), the
    // identifies themselves (the floor's part), and from the last IDENTIFY to every /readyz.
    where: {
      toFirstIdentifySeconds: seconds(first - seen.startedAt),
      firstToLastIdentifySeconds: seconds(last - first),
      ofWhichAboveWindowsSeconds: seconds(last - first - sequentialWindows * windowMs),
      lastIdentifyToAllReadySeconds: seconds(allReadyAt - last),
    },
    podsReadySeconds: seen.podsReadyAt.map((t) => seconds(t - seen.startedAt)),
    identifySpacingMs:
      gaps.length === 0
        ? null
        : {
            min: Math.min(...gaps),
            mean: Math.round(gaps.reduce((s, g) => s + g, 0) / gaps.length),
            max: Math.max(...gaps),
          },
  };
}

export type ColdStartFigures = ReturnType<typeof coldStartFigures>;
