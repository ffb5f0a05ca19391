// One Kurasuta cluster process of a gateway pod: an EarClient (@discordjs/ws, no discord.js) for
// its shards whose every dispatch goes to the forwarder, with identify throttling and sessions
// in Redis.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { AggregatorRegistry, register } from 'prom-client';
import { connectRedis } from '../../configuration/redis-connection.js';
import { createLogger } from '../../observability/logger.js';
import {
  discordBudgetPrefix,
  eventPartitionPrefix,
  eventPartitionPrefixes,
  legacyQueuePrefix,
  QUEUES,
  queuePrefix,
} from '../../queues/queue-names.js';
import { parseGatewayConfig } from '../config.js';
import { DispatchForwarder } from '../forwarding/dispatch-forwarder.js';
import { raiseEventPartitions } from '../../queues/partition-high-water.js';
import { RedisIdentifyThrottler } from '../identify/redis-identify-throttler.js';
import {
  ALIVE_INTERVAL_MS,
  isShardwardenMessage,
  UNRECOVERABLE_EXIT_CODE,
  type ClusterMessage,
} from '../ipc.js';
import { GatewayMetrics } from '../metrics.js';
import { RedisSessionStore } from '../sessions/redis-session-store.js';
import { BaseCluster } from '../sharding/load-kurasuta.js';
import { UnrecoverableGatewayError, type EarClient } from './ear-client.js';
import { logStartupMilestone, startupMilestone } from '../startup-milestones.js';

// Taken as this module is evaluated: Kurasuta loads it last, so every module is loaded by then.
const modulesLoaded = startupMilestone('modules loaded');

export default class GatewayCluster extends BaseCluster<EarClient> {
  protected async launch(): Promise<void> {
    const config = parseGatewayConfig(process.env);
    const log = createLogger('gateway', config.logLevel, {
      bot: config.bot.name,
      namespace: config.bot.namespace,
      pod: config.podIndex,
      cluster: this.id,
    });
    logStartupMilestone(log, modulesLoaded);
    logStartupMilestone(log, 'launched');
    new AggregatorRegistry(); // answers the primary's metrics requests
    // Each cluster's series stay its own in the pod's /metrics: summed over clusters, a
    // respawned cluster's counters starting again at 0 would look like a partial counter reset,
    // which rate() misreads as a burst.
    register.setDefaultLabels({ cluster: String(this.id) });
    const metrics = new GatewayMetrics(register);
    const send = (m: ClusterMessage) => process.send?.(m);

    // One client (a Cluster on Redis Cluster) for sessions, identify turns and the queues.
    const redis = connectRedis(config.redis, { maxRetriesPerRequest: null, lazyConnect: false });
    redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
    redis.once('ready', () => logStartupMilestone(log, 'redis connected'));
    const connection = redis;
    const prefix = queuePrefix(config.bot);
    const queues = {
      interactions: new Queue(QUEUES.interactions, { connection, prefix }),
      // One queue per partition, each under its own hash tag (queue-names.ts).
      events: eventPartitionPrefixes(config.bot, config.eventPartitions).map(
        (partitionPrefix) => new Queue(QUEUES.events, { connection, prefix: partitionPrefix }),
      ),
    };
    for (const q of [queues.interactions, ...queues.events])
      q.on('error', (err) => log.debug({ err: err.message }, 'queue connection error'));
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
          redis.set(`${eventPartitionPrefix(config.bot, partition)}:gateway:write-probe`, '1', 'PX', 60_000),
        ...(config.eventPartitions > 1
          ? { beforeFirstWrite: () => raiseEventPartitions(redis, config.bot, config.eventPartitions) }
          : {}),
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

    const client = this.client;
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
    // Only a close Discord lets no one recover from: the shard stays down until the pod restarts.
    const halted = (shardIds: number[], reason: string, done: () => void = () => undefined) => {
      log.error({ shards: shardIds, reason }, 'Discord refused the shard for good: not retried');
      if (process.send)
        process.send(
          { shardwarden: 'halted', clusterId: this.id, shardIds, reason } satisfies ClusterMessage,
          done,
        );
      else done();
    };
    let loggedIn = false;
    client.on('shardDisconnect', (event, id) => {
      report(id, false);
      // During login, login's rejection reports it (below).
      if (loggedIn) halted([id], `Discord closed the connection with ${event.reason}`);
    });
    client.on('shardError', (err, id) => log.error({ shard: id, err: err.message }, 'shard error'));
    client.on('debug', (message, id) => log.debug({ shard: id }, message));
    client.on('heartbeat', (id, latencyMs) =>
      metrics.heartbeatLatency.set({ shard: String(id) }, latencyMs / 1000),
    );
    const loopDelay = monitorEventLoopDelay({ resolution: 20 });
    loopDelay.enable();
    setInterval(() => {
      send({ shardwarden: 'alive', clusterId: this.id, loopDelayMs: loopDelay.max / 1e6 });
      loopDelay.reset();
    }, ALIVE_INTERVAL_MS).unref();

    process.on('message', (m: unknown) => {
      if (!isShardwardenMessage(m) || m.shardwarden !== 'shutdown') return;
      void (async () => {
        log.info('shutting down: freezing sessions, flushing the buffer');
        // From here on nothing advances the stored sequences and nothing new is accepted, so
        // whatever arrives now is replayed to whoever resumes these sessions. The connections
        // are not closed with 1000 (that would end the sessions): the process exit drops them,
        // which Discord treats as resumable.
        closing = true;
        sessions.stop();
        forwarder.close();
        const flushed = await forwarder.drain(m.deadlineMs);
        // Every session, quiet ones too, at the sequence that is safely in Redis; bounded, so a
        // dead Redis cannot hold the shutdown past the primary's deadline.
        await sessions
          .flush({ all: true, timeoutMs: 3_000 })
          .catch((err: Error) => log.warn({ err: err.message }, 'sessions not written at shutdown'));
        send({ shardwarden: 'stopped', clusterId: this.id, flushed });
        await Promise.all(
          [queues.interactions, ...queues.events].map((q) => q.close().catch(() => undefined)),
        );
        redis.disconnect();
        process.exit(0);
      })();
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
          return info;
        },
        // From the shutdown on, nothing advances the stored sessions (the handler above).
        updateSessionInfo: (shardId, info) => {
          if (!closing) sessions.update(shardId, info);
        },
      })
      .then(() => (loggedIn = true))
      .catch((err: unknown) => {
        if (!(err instanceof UnrecoverableGatewayError)) throw err;
        // Exits once the primary has the reason, with the code that tells it not to restart us.
        halted(client.shardIds, err.message, () => process.exit(UNRECOVERABLE_EXIT_CODE));
      });
  }
}
