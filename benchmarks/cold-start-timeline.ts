// Where a cold start's time goes, per pod, from the startup milestones the gateway processes log
// (bot/gateway/startup-milestones.ts): when each process started, loaded its modules, connected
// to Kurasuta's IPC and to Redis, got its first identify turn and had every shard READY, and the
// CPU each had used by then. Wall-clock times on a loaded machine mostly say how long a process
// waited for a core; the CPU figures say what the start itself costs. Pure: the caller reads the
// logs.
import { STARTUP_MILESTONE, type StartupMilestone } from '../bot/gateway/startup-milestones.js';

/** A cluster process's milestones, in the order they happen. */
const CLUSTER_MILESTONES = [
  'modules loaded',
  'launched',
  'redis connected',
  'first identify',
  'shards ready',
] as const satisfies StartupMilestone[];

interface MilestoneLine {
  msg: string;
  milestone: StartupMilestone;
  at: number;
  processStartedAt: number;
  cpuMs: number;
  cluster?: number;
}

const seconds = (ms: number) => Math.round(ms) / 1000;
const mean = (xs: number[]) =>
  xs.length === 0 ? null : Math.round(xs.reduce((s, x) => s + x, 0) / xs.length);

/** The milestone lines of a pod's log (one JSON object per line; other lines are skipped). */
export function milestoneLines(log: string): MilestoneLine[] {
  return log
    .split('\n')
    .filter((line) => line.includes(STARTUP_MILESTONE))
    .map((line) => {
      try {
        return JSON.parse(line) as MilestoneLine;
      } catch {
        return undefined;
      }
    })
    .filter((l): l is MilestoneLine => l?.msg === STARTUP_MILESTONE);
}

/**
 * One pod's start, from its milestone lines and the epoch ms it was spawned at. Times are
 * seconds since the spawn; for the pod's clusters, the slowest cluster's (the pod waits for it).
 * CPU is per process: the primary's at the fork, each cluster's mean at each milestone.
 */
export function podTimeline(lines: MilestoneLine[], spawnedAt: number) {
  const since = (at: number) => seconds(at - spawnedAt);
  const forked = lines.find((l) => l.cluster === undefined && l.milestone === 'clusters forked');
  const clusters = [...new Set(lines.filter((l) => l.cluster !== undefined).map((l) => l.cluster!))];
  const ofCluster = (id: number, m: StartupMilestone) =>
    lines.find((l) => l.cluster === id && l.milestone === m);
  // The last of the pod's clusters to reach each milestone (null if one never logged it).
  const slowest = (m: StartupMilestone) => {
    const ats = clusters.map((id) => ofCluster(id, m)?.at);
    return ats.length === 0 || ats.some((a) => a === undefined)
      ? null
      : since(Math.max(...(ats as number[])));
  };
  const clusterStarts = clusters.map((id) => ofCluster(id, 'modules loaded')?.processStartedAt ?? NaN);
  return {
    secondsSinceSpawn: {
      primaryStarted: forked ? since(forked.processStartedAt) : null,
      clustersForked: forked ? since(forked.at) : null,
      clustersStarted: clusterStarts.length > 0 ? since(Math.max(...clusterStarts)) : null,
      ...Object.fromEntries(CLUSTER_MILESTONES.map((m) => [camel(m), slowest(m)])),
    },
    cpuMs: {
      primaryAtFork: forked?.cpuMs ?? null,
      clusterMean: Object.fromEntries(
        CLUSTER_MILESTONES.map((m) => [
          camel(m),
          mean(clusters.map((id) => ofCluster(id, m)?.cpuMs).filter((c) => c !== undefined)),
        ]),
      ),
    },
    clusters: clusters.length,
  };
}

export type PodTimeline = ReturnType<typeof podTimeline>;

function camel(milestone: string): string {
  return milestone.replace(/ (\w)/g, (_, c: string) => c.toUpperCase());
}
