// Which shards a gateway pod runs. The operator plans with this and the pod derives its own
// range with it, so both always agree: pod i runs [i*shardsPerPod, min(total, (i+1)*shardsPerPod) - 1].

export interface ShardRange {
  /** First shard id, inclusive. */
  first: number;
  /** Last shard id, inclusive. */
  last: number;
}

export function podCount(totalShards: number, shardsPerPod: number): number {
  return Math.ceil(totalShards / shardsPerPod);
}

export function shardRangeOfPod(podIndex: number, totalShards: number, shardsPerPod: number): ShardRange {
  if (!Number.isInteger(totalShards) || totalShards < 1)
    throw new RangeError(`total shards must be a positive integer, got ${totalShards}`);
  if (!Number.isInteger(shardsPerPod) || shardsPerPod < 1)
    throw new RangeError(`shards per pod must be a positive integer, got ${shardsPerPod}`);
  const pods = podCount(totalShards, shardsPerPod);
  if (!Number.isInteger(podIndex) || podIndex < 0 || podIndex >= pods) {
    throw new RangeError(
      `pod index ${podIndex} is outside 0..${pods - 1} (${totalShards} shards, ${shardsPerPod} per pod)`,
    );
  }
  const first = podIndex * shardsPerPod;
  return { first, last: Math.min(totalShards, first + shardsPerPod) - 1 };
}

/** Splits a pod's shards over its cluster processes as evenly as possible, in order. */
export function splitOverClusters(range: ShardRange, clusters: number): number[][] {
  const ids = Array.from({ length: range.last - range.first + 1 }, (_, i) => range.first + i);
  const n = Math.max(1, Math.min(clusters, ids.length));
  const out: number[][] = [];
  let start = 0;
  for (let c = 0; c < n; c++) {
    const size = Math.floor(ids.length / n) + (c < ids.length % n ? 1 : 0);
    out.push(ids.slice(start, start + size));
    start += size;
  }
  return out;
}
