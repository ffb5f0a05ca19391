// How a gateway pod runs its clusters: one cluster in the pod's own process, or one Kurasuta
// cluster process per cluster. The choice is made here, once; either way each cluster does the
// same work (cluster-work.ts) and reports to the pod's primary side (main.ts) the same messages.
import type { Logger } from 'pino';
import { clusterNodeArgs, type GatewayConfig } from '../config.js';
import type { ClusterMessage } from '../ipc.js';
import type { EarClientOptions } from './ear-client.js';

/** The pod's clusters, as its primary side drives them. */
export interface PodClusters {
  /** Starts every cluster; resolves once each is up. */
  start(): Promise<void>;
  /** The clusters' metrics (Prometheus text), each series labelled with its cluster. */
  metrics(): Promise<string>;
  /** Asks every cluster to stop resumably (flush, save sessions) and waits for it, bounded. */
  stop(deadlineMs: number): Promise<void>;
}

/** What the clusters tell the primary side; `source` tells the reporting cluster (process) apart. */
export interface PodEvents {
  message(source: number, m: ClusterMessage): void;
  /** The cluster (process) is gone: its shards are down until it reports them again. */
  exited(source: number): void;
  exitedUnexpectedly(pid: number | undefined, code: number | null, signal: string | null): void;
}

/**
 * A bot whose spec says clustersPerPod: 1 runs each pod's shards in the pod's own process: a
 * Kurasuta primary beside a single cluster process is a whole second Node process (about half
 * the pod's memory, docs/benchmarks.md) that only relays. It is the spec's setting, not how many
 * clusters a pod ends up with, so that every pod of a bot has one shape, and a default bot with
 * one shard (or a last pod of one shard) keeps the forked shape's restart behaviour.
 */
export function runsInProcess(config: Pick<GatewayConfig, 'clustersPerPod'>): boolean {
  return config.clustersPerPod === 1;
}

/**
 * An in-process pod's semi-space cap: V8 sizes its heap when the process starts, so a process
 * without the flag replaces itself (execve: same pid, the container's process stays the same)
 * with one started with it. Never through NODE_OPTIONS, which is the image's or the user's.
 * Returns only if nothing is to change.
 */
export function withSemiSpaceCap(config: Pick<GatewayConfig, 'maxSemiSpaceMb'>): void {
  const args = clusterNodeArgs(process.execArgv, process.env.NODE_OPTIONS, config.maxSemiSpaceMb);
  if (args.length === process.execArgv.length) return;
  process.execve!(process.execPath, [process.execPath, ...args, ...process.argv.slice(1)], process.env);
}

/** The EarClient's options, the same for a forked cluster and an in-process one. */
export function earClientOptions(config: GatewayConfig): Record<string, unknown> {
  return {
    intents: config.intents,
    apiUrl: config.discordApiUrl,
  } satisfies EarClientOptions as unknown as Record<string, unknown>;
}

export async function podClusters(
  config: GatewayConfig,
  clusterShards: number[][],
  events: PodEvents,
  log: Logger,
): Promise<PodClusters> {
  if (runsInProcess(config)) {
    const { inProcessCluster } = await import('./in-process-cluster.js');
    return inProcessCluster(config, clusterShards.flat(), events, log);
  }
  const { forkedClusters } = await import('../sharding/forked-clusters.js');
  return forkedClusters(config, clusterShards, events, log);
}
