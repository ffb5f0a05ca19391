// The work of one gateway cluster: an EarClient (@discordjs/ws, no discord.js) for its shards
// whose every dispatch goes to the forwarder, with identify throttling and sessions in Redis.
// The same code runs in a Kurasuta cluster process (gateway-cluster.ts, clustersPerPod > 1) and
// in the pod's one process (in-process-cluster.ts, clustersPerPod = 1): only the link to the
// pod's primary side (how reports reach it, how it asks for a shutdown) differs.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import type { Registry } from 'prom-client';
import { connectRedis } from '../../configuration/redis-connection.js';
import { createLogger } from '../../observability/logger.js';
import {
  discordBudgetPrefix,
  forwardedQueues,
  legacyQueuePrefix,
  partitionKey,
  QUEUES,
  queuePrefix,
} from '../../queues/queue-names.js';
import type { GatewayConfig } from '../config.js';
import { BatchFormatWatch } from '../forwarding/batch-format.js';
import { DispatchForwarder } from '../forwarding/dispatch-forwarder.js';
import { raiseEventPartitions } from '../../queues/partition-high-water.js';
import { RedisIdentifyThrottler } from '../identify/redis-identify-throttler.js';
import { ALIVE_INTERVAL_MS, UNRECOVERABLE_EXIT_CODE, type ClusterMessage } from '../ipc.js';
import { GatewayMetrics } from '../metrics.js';
import { RedisSessionStore } from '../sessions/redis-session-store.js';
import { UnrecoverableGatewayError, type EarClient } from './ear-client.js';
import { logStartupMilestone, startupMilestone } from '../startup-milestones.js';

// Taken as this module is evaluated, after the modules it imports (most of the cluster's: the
// client, BullMQ, ioredis, prom-client); the entry's own remaining imports may follow.
const modulesLoaded = startupMilestone('modules loaded');

/** How a cluster reaches the pod's primary side, wherever that runs. */
export interface PrimaryLink {
  /** Where the cluster's metrics are registered (the pod's /metrics serves them). */
  registry: Registry;
  /** Reports to the primary side; resolves once delivered. */
  send(message: ClusterMessage): Promise<void>;
  /** Registers what runs when the primary side asks for a shutdown. */
  onShutdown(stop: (deadlineMs: number) => Promise<void>): void;
  /** The cluster is done (0: shut down; UNRECOVERABLE_EXIT_CODE: Discord refused it for good). */
  end(code: number): void;
}

export async function runClusterWork(
  config: GatewayConfig,
  clusterId: number,
  client: EarClient,
  link: PrimaryLink,
): Promise<void> {
  const log = createLogger('gateway', config.logLevel, {
    bot: config.bot.name,
    namespace: config.bot.namespace,
    pod: config.podIndex,
    cluster: clusterId,
  });
  logStartupMilestone(log, modulesLoaded);
  logStartupMilestone(log, 'launched');
  // Each cluster's series stay its own in the pod's /metrics: summed over clusters, a
  // respawned cluster's counters starting again at 0 would look like a partial counter reset,
  // which rate() misreads as a burst.
  link.registry.setDefaultLabels({ cluster: String(clusterId) });
  const metrics = new GatewayMetrics(link.registry);
  const send = (m: ClusterMessage) => void link.send(m);

  // One client (a Cluster on Redis Cluster) for sessions, identify turns and the queues.
  const redis = connectRedis(config.redis, { maxRetriesPerRequest: null, lazyConnect: false });
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
  redis.once('ready', () => logStartupMilestone(log, 'redis connected'));
  const connection = redis;
  const prefix = queuePrefix(config.bot);
  // The interactions' queue and one events queue per partition, each under its own hash tag;
  // picked by name and partition, not by the list's order.
  const forwarded = forwardedQueues(config.bot, config.eventPartitions);
  const opened = forwarded.map((q) => new Queue(q.queue, { connection, prefix: q.prefix }));
  for (const q of opened) q.on('error', (err) => log.debug({ err: err.message }, 'queue connection error'));
  const events: Queue[] = [];
  forwarded.forEach((q, i) => {
    if (q.queue === QUEUES.events) events[q.partition] = opened[i]!;
  });
  const interactions = opened[forwarded.findIndex((q) => q.queue === QUEUES.interactions)]!;
  const queues = { interactions, events };
  const batchFormat = new BatchFormatWatch({ redis, botPrefix: prefix, gauge: metrics.batchBodies, log });
  batchFormat.start();
  const forwarder = new DispatchForwarder(
    queues,
    {
      events: config.events,
      generation: config.generation,
      batchSize: config.batchSize,
      batchDelayMs: config.batchDelayMs,
      batchesInFlight: config.batchesInFlight,
      bufferLimit: config.bufferLimit,
      probeWrite: (partition) =>
        redis.set(partitionKey(config.bot, partition, 'gateway', 'write-probe'), '1', 'PX', 60_000),
      beforeFirstWrite: () => raiseEventPartitions(redis, config.bot, config.eventPartitions),
      batchBodies: { redis, enabled: () => batchFormat.batchBodies() },
      resumeShard: (shardId) =>
        client.resume(shardId, 'resuming for the dispatches refused while the buffer was full'),
    },
    metrics,
    log,
  );
  const sessions = new RedisSessionStore(
    redis,
    prefix,
    config.totalShards,
    500,
    600,
    (shardId, seq) => forwarder.safeSequence(shardId, seq),
    config.legacyKeys ? legacyQueuePrefix(config.bot.name) : undefined,
  );
  let identified = false;
  const throttler = new RedisIdentifyThrottler(redis, {
    keyPrefix: discordBudgetPrefix(config.bot, config.applicationId),
    maxConcurrency: config.maxConcurrency,
    windowMs: config.identifyWindowMs,
    onError: (err) => log.warn({ err: err.message }, 'identify queue: Redis error; still waiting'),
    onWait: (shardId, ms) => {
      if (!identified) logStartupMilestone(log, 'first identify');
      identified = true;
      metrics.identifyWait.observe(ms / 1000);
      log.info({ shard: shardId, waitedMs: ms }, 'identifying');
    },
  });

  let closing = false;
  client.on('dispatch', (packet, shardId) => {
    // With the sequence, the session keys events that have no id of their own.
    forwarder.accept(packet.t, packet.d, shardId, packet.s, sessions.sessionId(shardId));
  });
  const report = (shardId: number, ready: boolean) => {
    metrics.shardStatus.set({ shard: String(shardId) }, ready ? 1 : 0);
    send({ shardwarden: 'shard', shardId, ready });
  };
  client.once('ready', () => logStartupMilestone(log, 'shards ready'));
  client.on('shardReady', (id, unavailable) => {
    metrics.sessionStarts.inc({ kind: 'identify' });
    log.info({ shard: id, unavailableGuilds: unavailable?.size }, 'shard ready');
    report(id, true);
  });
  client.on('shardResume', (id, replayed) => {
    metrics.sessionStarts.inc({ kind: 'resume' });
    log.info({ shard: id, replayed }, 'shard resumed');
    report(id, true);
  });
  client.on('shardReconnecting', (id) => report(id, false));
  client.on('shardHello', (id) => forwarder.shardConnected(id));
  // Only a close Discord lets no one recover from: the shard stays down until the pod restarts.
  const halted = (shardIds: number[], reason: string) => {
    log.error({ shards: shardIds, reason }, 'Discord refused the shard for good: not retried');
    return link.send({ shardwarden: 'halted', clusterId, shardIds, reason });
  };
  let loggedIn = false;
  client.on('shardDisconnect', (event, id) => {
    report(id, false);
    // During login, login's rejection reports it (below).
    if (loggedIn) void halted([id], `Discord closed the connection with ${event.reason}`);
  });
  client.on('shardError', (err, id) => log.error({ shard: id, err: err.message }, 'shard error'));
  client.on('debug', (message, id) => log.debug({ shard: id }, message));
  client.on('heartbeat', (id, latencyMs) =>
    metrics.heartbeatLatency.set({ shard: String(id) }, latencyMs / 1000),
  );
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  setInterval(() => {
    send({ shardwarden: 'alive', clusterId, loopDelayMs: loopDelay.max / 1e6 });
    loopDelay.reset();
  }, ALIVE_INTERVAL_MS).unref();

  link.onShutdown(async (deadlineMs) => {
    log.info('shutting down: freezing sessions, flushing the buffer');
    // From here on nothing advances the stored sequences and nothing new is accepted, so
    // whatever arrives now is replayed to whoever resumes these sessions. The connections
    // are not closed with 1000 (that would end the sessions): the process exit drops them,
    // which Discord treats as resumable.
    closing = true;
    sessions.stop();
    void batchFormat.stop(0);
    forwarder.close();
    const flushed = await forwarder.drain(deadlineMs);
    // Every session, quiet ones too, at the sequence that is safely in Redis; bounded, so a
    // dead Redis cannot hold the shutdown past the primary's deadline.
    await sessions
      .flush({ all: true, timeoutMs: 3_000 })
      .catch((err: Error) => log.warn({ err: err.message }, 'sessions not written at shutdown'));
    await link.send({ shardwarden: 'stopped', clusterId, flushed });
    await Promise.all(opened.map((q) => q.close().catch(() => undefined)));
    redis.disconnect();
    link.end(0);
  });

  await client
    .login(config.token, {
      identifyThrottler: throttler,
      retrieveSessionInfo: async (shardId) => {
        const { info, fromRedis } = await sessions.retrieve(shardId);
        if (fromRedis)
          log.info(
            { shard: shardId, resumeFrom: info?.sequence ?? null },
            info ? 'resuming the stored session' : 'no stored session: identifying',
          );
        // Resumed from before any dispatch the full buffer refused, so Discord replays it.
        return forwarder.resumable(shardId, info);
      },
      // From the shutdown on, nothing advances the stored sessions (the handler above).
      updateSessionInfo: (shardId, info) => {
        if (closing) return;
        sessions.update(shardId, info);
        forwarder.sessionUpdated(shardId, info?.sessionId);
      },
    })
    .then(() => (loggedIn = true))
    .catch(async (err: unknown) => {
      if (!(err instanceof UnrecoverableGatewayError)) throw err;
      // Ends once the primary has the reason, with the code that tells it not to restart us.
      await halted(client.shardIds, err.message);
      link.end(UNRECOVERABLE_EXIT_CODE);
    });
}
