// A gateway pod's clusters as Kurasuta cluster processes (clustersPerPod > 1): the primary forks
// one process per cluster over Node's cluster IPC; each runs gateway-cluster.ts.
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { within } from '../../timing/within.js';
import { earClientOptions, type PodClusters, type PodEvents } from '../cluster/pod-clusters.js';
import { clusterEnv, clusterNodeArgs, type GatewayConfig } from '../config.js';
import { isShardwardenMessage, type PrimaryMessage } from '../ipc.js';
import { RangeShardingManager } from './range-sharding-manager.js';
import { logStartupMilestone } from '../startup-milestones.js';

const CLUSTER_MODULE = fileURLToPath(new URL('../cluster/gateway-cluster.js', import.meta.url));
const IPC_SOCKET_ENV = 'SHARDWARDEN_IPC_SOCKET';

function shardingManager(config: GatewayConfig, clusterShards: number[][], clientSide: object) {
  return new RangeShardingManager(CLUSTER_MODULE, {
    token: config.token,
    shardCount: config.totalShards,
    clusterShards,
    ...clientSide,
    nodeArgs: clusterNodeArgs(process.execArgv, process.env.NODE_OPTIONS, config.maxSemiSpaceMb),
    ipcSocket: process.env[IPC_SOCKET_ENV]!,
    respawn: true,
    timeout: config.clusterStartTimeoutMs,
  });
}

/** In a forked cluster process: Kurasuta's own start of the cluster (it builds the EarClient). */
export async function startForkedCluster(config: GatewayConfig, clusterShards: number[][]): Promise<void> {
  const { EarClient } = await import('../cluster/ear-client.js');
  const clientSide = { client: EarClient as never, clientOptions: earClientOptions(config) };
  await shardingManager(config, clusterShards, clientSide).spawn();
}

/** In the pod's primary process: forks and watches one process per cluster. */
export function forkedClusters(
  config: GatewayConfig,
  clusterShards: number[][],
  events: PodEvents,
  log: Logger,
): PodClusters {
  // Kurasuta's IPC socket: one per pod process tree (a unix socket, so pods sharing a machine
  // in tests do not collide); cluster processes inherit the path through the environment.
  // A random part as well: a killed pod process leaves its socket file behind, and pids repeat.
  process.env[IPC_SOCKET_ENV] = join(
    tmpdir(),
    `shardwarden-gateway-${process.pid}-${randomBytes(4).toString('hex')}.sock`,
  );
  // Kurasuta forks the clusters with the primary's environment.
  Object.assign(process.env, clusterEnv(process.env));
  const manager = shardingManager(config, clusterShards, {});
  let stopping = false;
  cluster.on('message', (worker, m: unknown) => {
    if (isShardwardenMessage(m) && m.shardwarden !== 'shutdown') events.message(worker.id, m);
  });
  // A message to a cluster process that is exiting (prom-client's metrics request races the
  // exit) fails with EPIPE as an 'error' on its worker: with no listener that is thrown, and the
  // primary, with every shard of the pod, would crash on a scrape.
  cluster.on('fork', (worker) =>
    worker.on('error', (err: Error) =>
      log.warn({ err: err.message, pid: worker.process.pid }, 'message to a cluster process failed'),
    ),
  );
  cluster.on('exit', (worker, code, signal) => {
    events.exited(worker.id);
    if (!stopping) events.exitedUnexpectedly(worker.process.pid, code, signal);
  });
  manager.on('error', (err: Error) => log.error({ err: err.message }, 'kurasuta'));
  manager.on('debug', (msg: string) => log.debug({ kurasuta: msg }));
  const aggregator = new AggregatorRegistry();
  return {
    start: () => {
      const spawned = manager.spawn();
      logStartupMilestone(log, 'clusters forked');
      return spawned;
    },
    metrics: () => aggregator.clusterMetrics().catch(() => ''),
    async stop(deadlineMs) {
      stopping = true;
      manager.respawn = false;
      const workers = Object.values(cluster.workers ?? {}).filter((w) => !!w);
      const stopped = workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.send({ shardwarden: 'shutdown', deadlineMs } satisfies PrimaryMessage);
          }),
      );
      await within(Promise.all(stopped), deadlineMs + 2_000, () => undefined);
      manager.stopAll();
    },
  };
}
