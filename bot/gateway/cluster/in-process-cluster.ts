// A gateway pod's one cluster, run in the pod's own process (clustersPerPod = 1): no Kurasuta,
// no fork. The cluster's work is cluster-work.ts, as in a forked cluster process; its reports
// go straight to the primary side's handler, and its metrics to a registry /metrics appends.
// A crash ends the pod's process, and the kubelet restarts the container (where Kurasuta
// would respawn a forked cluster process).
import { Registry } from 'prom-client';
import { within } from '../../timing/within.js';
import type { GatewayConfig } from '../config.js';
import { runClusterWork } from './cluster-work.js';
import { EarClient, type KurasutaClientOptions } from './ear-client.js';
import { earClientOptions, type PodClusters, type PodEvents } from './pod-clusters.js';

/** The in-process cluster's id: cluster 0, as the first forked one would be. */
const CLUSTER_ID = 0;

export function inProcessCluster(config: GatewayConfig, shards: number[], events: PodEvents): PodClusters {
  const registry = new Registry();
  let stop: ((deadlineMs: number) => Promise<void>) | undefined;
  const options = { ...earClientOptions(config), shards, shardCount: config.totalShards };
  const client = new EarClient(options as unknown as KurasutaClientOptions);
  return {
    start: () =>
      runClusterWork(config, CLUSTER_ID, client, {
        registry,
        send: async (m) => events.message(CLUSTER_ID, m),
        onShutdown: (s) => (stop = s),
        // Nothing to end: a halted cluster leaves the process serving /readyz with the reason,
        // as a forked one's exit leaves the primary; a stopped one returns to stop() below.
        end: () => undefined,
      }),
    metrics: () => registry.metrics(),
    stop: (deadlineMs) =>
      within(stop?.(deadlineMs) ?? Promise.resolve(), deadlineMs + 2_000, () => undefined),
  };
}
