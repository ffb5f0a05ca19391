// How a gateway pod runs its clusters: one cluster in the pod's own process, or one Kurasuta
// cluster process per cluster. The choice is made here, once; either way each cluster does the
// same work (cluster-work.ts) and reports to the pod's primary side (main.ts) the same messages.
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.js';
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
 * A pod of one cluster runs it in its own process: a Kurasuta primary beside a single cluster
 * process is a whole second Node process (about half the pod's memory, docs/benchmarks.md)
 * that only relays. Several clusters are forked, so their shards use several cores.
 */
export function runsInProcess(clusterShards: number[][]): boolean {
  return clusterShards.length === 1;
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
  if (runsInProcess(clusterShards)) {
    const { inProcessCluster } = await import('./in-process-cluster.js');
    return inProcessCluster(config, clusterShards[0]!, events);
  }
  const { forkedClusters } = await import('../sharding/forked-clusters.js');
  return forkedClusters(config, clusterShards, events, log);
}
