// The gateway pod's primary side: runs the pod's clusters over its shard range (in this process
// when the spec says clustersPerPod 1, else as Kurasuta cluster processes: see
// cluster/pod-clusters.ts) and serves /healthz, /readyz (every shard of the range READY) and
// /metrics (over its clusters).
// In the cluster processes Kurasuta forks, the same entrypoint hands over to GatewayCluster.
import cluster from 'node:cluster';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, Registry } from 'prom-client';
import { createLogger } from '../observability/logger.js';
import { splitOverClusters } from '../sharding/shard-range.js';
import { GatewayConfigError, parseGatewayConfig, type GatewayConfig } from './config.js';
import { podClusters, runsInProcess, withSemiSpaceCap, type PodEvents } from './cluster/pod-clusters.js';
import { STALL_LIMIT_MS, UNRECOVERABLE_EXIT_CODE } from './ipc.js';

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
  const clusterShards = splitOverClusters(config.range, config.clustersPerPod);
  if (cluster.isPrimary && runsInProcess(config)) withSemiSpaceCap(config);
  if (!cluster.isPrimary) {
    const { startForkedCluster } = await import('./sharding/forked-clusters.js');
    return startForkedCluster(config, clusterShards);
  }

  const log = createLogger('gateway', config.logLevel, {
    bot: config.bot.name,
    namespace: config.bot.namespace,
    pod: config.podIndex,
  });
  // A crash is one JSON line naming the bot and pod (not Node's bare stack trace) before the
  // exit; in a pod running its shards in-process it is that pod's restart.
  process.on('uncaughtException', (err) => {
    log.fatal({ err: err.message, stack: err.stack }, 'gateway crashed: exiting');
    process.exit(1);
  });
  const shards = clusterShards.flat();
  const ready = new Map<number, boolean>(shards.map((id) => [id, false]));
  // Which cluster (process) last reported each shard: when it exits, its shards are down until
  // the respawned process reports them (else /readyz stays true through a crash, and a reshard
  // cut-over could trust a pod whose shards are gone).
  const reportedBy = new Map<number, number>();
  // Per cluster (process): when it last said it was alive, and its loop delay then. A cluster
  // is watched from its first message on; one still starting is Kurasuta's to time out.
  const alive = new Map<number, { at: number; loopDelayMs: number; clusterId: number }>();
  // Shards Discord refused for good, and why: down until the pod restarts (/readyz says why).
  const halted = new Map<number, string>();
  let shuttingDown = false;
  const events: PodEvents = {
    message(source, m) {
      if (m.shardwarden === 'shard') {
        ready.set(m.shardId, m.ready);
        reportedBy.set(m.shardId, source);
      }
      if (m.shardwarden === 'stopped' && m.flushed)
        log.info({ cluster: m.clusterId }, 'cluster stopped, its buffer flushed');
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
        alive.set(source, { at: Date.now(), loopDelayMs: m.loopDelayMs, clusterId: m.clusterId });
    },
    exited(source) {
      alive.delete(source);
      for (const [shardId, by] of reportedBy) if (by === source) ready.set(shardId, false);
    },
    exitedUnexpectedly(pid, code, signal) {
      if (code === UNRECOVERABLE_EXIT_CODE)
        log.error({ pid, code }, 'cluster process exited for good: not restarted');
      else log.warn({ pid, code, signal }, 'cluster process exited; Kurasuta respawns it');
    },
  };
  const stalledClusters = () =>
    [...alive.values()]
      .filter((a) => Date.now() - a.at > STALL_LIMIT_MS || a.loopDelayMs > STALL_LIMIT_MS)
      .map((a) => a.clusterId);

  const clusters = await podClusters(config, clusterShards, events, log);
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
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const allReady = () => [...ready.values()].every(Boolean);
  const metricsRegistry = {
    contentType: own.contentType,
    metrics: async () => {
      shardsReady.set([...ready.values()].filter(Boolean).length);
      shardsHalted.set(halted.size);
      return `${await own.metrics()}\n${await clusters.metrics()}`;
    },
  } as unknown as Registry;
  // The clusters start first: loading their modules and logging in is the long part of a cold
  // start, and the HTTP server comes up meanwhile. The rejection handler only marks the
  // promise handled until it is awaited below.
  const spawned = clusters.start();
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
    let code = 0;
    try {
      await clusters.stop(20_000);
    } catch (err) {
      // Still a deliberate exit: what was not flushed is replayed to whoever resumes.
      log.error({ err: (err as Error).message }, 'shutdown failed: unflushed events are replayed on resume');
      code = 1;
    }
    await http.close();
    process.exit(code);
  };
  // `on`, not `once`: a second signal during the drain must not fall back to Node's default
  // (an immediate exit); shutdown() runs once anyway.
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  await spawned;
}
