// A gateway pod's one cluster, run in the pod's own process (spec clustersPerPod: 1): no
// Kurasuta, no fork. The cluster's work is cluster-work.ts, as in a forked cluster process; its
// reports go straight to the primary side's handler, and its metrics to a registry /metrics
// appends. Where Kurasuta would respawn a forked cluster process (a crash, a start past its
// timeout), this process exits non-zero and the kubelet restarts the container, with its
// back-off (docs/gateway.md, "The two pod shapes").
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { within } from '../../timing/within.js';
import type { GatewayConfig } from '../config.js';
import { UNRECOVERABLE_EXIT_CODE } from '../ipc.js';
import { runClusterWork } from './cluster-work.js';
import { EarClient, type KurasutaClientOptions } from './ear-client.js';
import { earClientOptions, type PodClusters, type PodEvents } from './pod-clusters.js';

/** The in-process cluster's id: cluster 0, as the first forked one would be. */
const CLUSTER_ID = 0;

/** Kurasuta's start timeout for a cluster of `shards` shards (its guildsPerShard left at 1000). */
export function startTimeoutMs(config: Pick<GatewayConfig, 'clusterStartTimeoutMs'>, shards: number): number {
  return config.clusterStartTimeoutMs * shards;
}

export function inProcessCluster(
  config: GatewayConfig,
  shards: number[],
  events: PodEvents,
  log: Logger,
): PodClusters {
  const registry = new Registry();
  let stop: ((deadlineMs: number) => Promise<void>) | undefined;
  let stopping = false;
  const options = { ...earClientOptions(config), shards, shardCount: config.totalShards };
  const client = new EarClient(options as unknown as KurasutaClientOptions);
  const work = () =>
    runClusterWork(config, CLUSTER_ID, client, {
      registry,
      send: async (m) => events.message(CLUSTER_ID, m),
      onShutdown: (s) => (stop = s),
      // A halted cluster closes its shards' connections (a forked one's exit drops them) and
      // leaves the process serving /readyz with the reason, as a forked one leaves the
      // primary; a stopped one returns to stop() below.
      end: (code) => {
        if (code === UNRECOVERABLE_EXIT_CODE) void client.halt();
      },
    });
  return {
    // A login stuck (a wedged identify queue, a session read that never answers) would leave the
    // pod unready and alive for good: as Kurasuta kills such a cluster process, the pod's
    // process ends, and the kubelet starts it again.
    start: () =>
      within(work(), startTimeoutMs(config, shards.length), () => {
        if (stopping) return;
        log.error(
          { timeoutMs: startTimeoutMs(config, shards.length), shards },
          'the shards did not get ready in time (SHARDWARDEN_CLUSTER_START_TIMEOUT_MS per shard): exiting for a restart',
        );
        process.exit(1);
      }),
    metrics: () => registry.metrics(),
    stop: (deadlineMs) => {
      stopping = true;
      return within(stop?.(deadlineMs) ?? Promise.resolve(), deadlineMs + 2_000, () => undefined);
    },
  };
}
