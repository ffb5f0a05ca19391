// The gateway pod's primary process: runs Kurasuta over this pod's shard range and serves
// /healthz, /readyz (every shard of the range READY) and /metrics (aggregated over clusters).
// In the cluster processes Kurasuta forks, the same entrypoint hands over to GatewayCluster.
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AggregatorRegistry, Gauge, Registry } from 'prom-client';
import { createLogger } from '../observability/logger.js';
import { splitOverClusters } from '../sharding/shard-range.js';
import {
  clusterEnv,
  clusterNodeArgs,
  GatewayConfigError,
  parseGatewayConfig,
  type GatewayConfig,
} from './config.js';
import type { EarClientOptions } from './cluster/ear-client.js';
import { isShardwardenMessage, STALL_LIMIT_MS, UNRECOVERABLE_EXIT_CODE, type PrimaryMessage } from './ipc.js';
import { RangeShardingManager } from './sharding/range-sharding-manager.js';
import { within } from '../timing/within.js';
import { logStartupMilestone } from './startup-milestones.js';

const CLUSTER_MODULE = fileURLToPath(new URL('./cluster/gateway-cluster.js', import.meta.url));
const IPC_SOCKET_ENV = 'SHARDWARDEN_IPC_SOCKET';

export async function runGateway(env: NodeJS.ProcessEnv): Promise<void> {
  let config: GatewayConfig;
  try {
    config = parseGatewayConfig(env);
  } catch (err) {
    if (err instanceof GatewayConfigError) {
      console.error(`gateway: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  // Kurasuta's IPC socket: one per pod process tree (a unix socket, so pods sharing a machine
  // in tests do not collide); cluster processes inherit the path through the environment.
  // A random part as well: a killed pod process leaves its socket file behind, and pids repeat.
  if (cluster.isPrimary) {
    process.env[IPC_SOCKET_ENV] = join(
      tmpdir(),
      `shardwarden-gateway-${process.pid}-${randomBytes(4).toString('hex')}.sock`,
    );
    // Kurasuta forks the clusters with the primary's environment.
    Object.assign(process.env, clusterEnv(process.env));
  }
  const clusterShards = splitOverClusters(config.range, config.clustersPerPod);
  // The client (an EarClient over @discordjs/ws) is loaded only where it runs: the cluster
  // processes. Kurasuta builds it there with these options plus the process's shards.
  const clientSide = cluster.isPrimary
    ? {}
    : {
        client: (await import('./cluster/ear-client.js')).EarClient as never,
        clientOptions: {
          intents: config.intents,
          apiUrl: config.discordApiUrl,
        } satisfies EarClientOptions as unknown as Record<string, unknown>,
      };
  const manager = new RangeShardingManager(CLUSTER_MODULE, {
    token: config.token,
    shardCount: config.totalShards,
    clusterShards,
    ...clientSide,
    nodeArgs: clusterNodeArgs(process.execArgv, process.env.NODE_OPTIONS, config.maxSemiSpaceMb),
    ipcSocket: process.env[IPC_SOCKET_ENV]!,
    respawn: true,
    timeout: config.clusterStartTimeoutMs,
  });
  if (!cluster.isPrimary) {
    await manager.spawn();
    return;
  }

  const log = createLogger('gateway', config.logLevel, {
    bot: config.bot.name,
    namespace: config.bot.namespace,
    pod: config.podIndex,
  });
  const shards = clusterShards.flat();
  const ready = new Map<number, boolean>(shards.map((id) => [id, false]));
  // Which cluster process (worker id) last reported each shard: when it exits, its shards are
  // down until the respawned process reports them (else /readyz stays true through a crash,
  // and a reshard cut-over could trust a pod whose shards are gone).
  const reportedBy = new Map<number, number>();
  // Per cluster process (by worker id): when it last said it was alive, and its loop delay then.
  // A cluster is watched from its first message on; one still starting is Kurasuta's to time out.
  const alive = new Map<number, { at: number; loopDelayMs: number; clusterId: number }>();
  // Shards Discord refused for good, and why: down until the pod restarts (/readyz says why).
  const halted = new Map<number, string>();
  cluster.on('message', (worker, m: unknown) => {
    if (!isShardwardenMessage(m)) return;
    if (m.shardwarden === 'shard') {
      ready.set(m.shardId, m.ready);
      reportedBy.set(m.shardId, worker.id);
    }
    if (m.shardwarden === 'stopped' && !m.flushed)
      log.warn(
        { cluster: m.clusterId },
        'cluster stopped before its buffer was flushed: the rest is replayed on resume',
      );
    if (m.shardwarden === 'halted') {
      for (const shardId of m.shardIds) halted.set(shardId, m.reason);
      log.error(
        { cluster: m.clusterId, shards: m.shardIds, reason: m.reason },
        'Discord refused shards for good: they stay down until the pod restarts',
      );
    }
    if (m.shardwarden === 'alive')
      alive.set(worker.id, { at: Date.now(), loopDelayMs: m.loopDelayMs, clusterId: m.clusterId });
  });
  const stalledClusters = () =>
    [...alive.values()]
      .filter((a) => Date.now() - a.at > STALL_LIMIT_MS || a.loopDelayMs > STALL_LIMIT_MS)
      .map((a) => a.clusterId);
  cluster.on('exit', (worker, code, signal) => {
    alive.delete(worker.id);
    for (const [shardId, workerId] of reportedBy) if (workerId === worker.id) ready.set(shardId, false);
    if (shuttingDown) return;
    if (code === UNRECOVERABLE_EXIT_CODE)
      log.error({ pid: worker.process.pid, code }, 'cluster process exited for good: not restarted');
    else log.warn({ pid: worker.process.pid, code, signal }, 'cluster process exited; Kurasuta respawns it');
  });

  const own = new Registry();
  const shardsReady = new Gauge({
    name: 'shardwarden_gateway_pod_shards_ready',
    help: 'Shards of this pod that are READY.',
    registers: [own],
  });
  const shardsTotal = new Gauge({
    name: 'shardwarden_gateway_pod_shards',
    help: 'Shards this pod runs.',
    registers: [own],
  });
  shardsTotal.set(shards.length);
  const shardsHalted = new Gauge({
    name: 'shardwarden_gateway_pod_shards_halted',
    help: 'Shards of this pod Discord refused for good (bad token, intents, sharding): down until the pod restarts.',
    registers: [own],
  });
  const aggregator = new AggregatorRegistry();
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const allReady = () => [...ready.values()].every(Boolean);
  const metricsRegistry = {
    contentType: own.contentType,
    metrics: async () => {
      shardsReady.set([...ready.values()].filter(Boolean).length);
      shardsHalted.set(halted.size);
      const workers = await aggregator.clusterMetrics().catch(() => '');
      return `${await own.metrics()}\n${workers}`;
    },
  } as unknown as Registry;
  let shuttingDown = false;
  // The clusters start first: loading their modules and logging in is the long part of a cold
  // start, and the primary's HTTP server comes up meanwhile. The rejection handler only marks
  // the promise handled until it is awaited below.
  manager.on('error', (err: Error) => log.error({ err: err.message }, 'kurasuta'));
  manager.on('debug', (msg: string) => log.debug({ kurasuta: msg }));
  const spawned = manager.spawn();
  logStartupMilestone(log, 'clusters forked');
  spawned.catch(() => undefined);
  const { startHttpServer } = await import('../observability/http-server.js');
  const http = await startHttpServer(
    '0.0.0.0',
    config.httpPort,
    metricsRegistry,
    {
      // Alive while no event loop is stuck, this one's or a cluster's (a blocked cluster loop
      // starves its shards' heartbeats; Kurasuta restarts clusters that exit, not stuck ones).
      healthy: () => {
        const stuck = loopDelay.max / 1e6 > STALL_LIMIT_MS;
        loopDelay.reset();
        return !stuck && stalledClusters().length === 0;
      },
      ready: () => allReady() && !shuttingDown,
      describe: () => ({
        shards: shards.length,
        ready: [...ready.values()].filter(Boolean).length,
        range: config.range,
        stalledClusters: stalledClusters(),
        halted: [...halted].map(([shard, reason]) => ({ shard, reason })),
      }),
    },
    log,
  );
  log.info(
    {
      port: http.port,
      range: config.range,
      clusters: clusterShards,
      totalShards: config.totalShards,
      generation: config.generation,
    },
    'gateway started',
  );

  const shutdown = async () => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('SIGTERM: stopping shards resumably and flushing');
    manager.respawn = false;
    const deadlineMs = 20_000;
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
    await http.close();
    process.exit(0);
  };
  // `on`, not `once`: a second signal during the drain must not fall back to Node's default
  // (an immediate exit); shutdown() runs once anyway.
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  await spawned;
}
