// One Kurasuta cluster process of a gateway pod: a discord.js v14 client for its shards whose
// every dispatch goes to the forwarder, with identify throttling and sessions in Redis.
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { AggregatorRegistry, register } from 'prom-client';
import { connectRedis } from '../../configuration/redis-connection.js';
import { createLogger } from '../../observability/logger.js';
import {
  botKey,
  discordBudgetPrefix,
  legacyQueuePrefix,
  QUEUES,
  queuePrefix,
} from '../../queues/queue-names.js';
import { parseGatewayConfig } from '../config.js';
import { DispatchForwarder } from '../forwarding/dispatch-forwarder.js';
import { RedisIdentifyThrottler } from '../identify/redis-identify-throttler.js';
import { ALIVE_INTERVAL_MS, isShardwardenMessage, type ClusterMessage } from '../ipc.js';
import { GatewayMetrics } from '../metrics.js';
import { handleOnlySessionPackets } from './lean-packets.js';
import { RedisSessionStore, type SessionInfo } from '../sessions/redis-session-store.js';
import { BaseCluster } from '../sharding/load-kurasuta.js';

const require = createRequire(import.meta.url);
// The @discordjs/ws that discord.js itself uses (it may differ from the top-level one).
const djsWs = createRequire(require.resolve('discord.js'))('@discordjs/ws') as typeof import('@discordjs/ws');

interface WsManagerLike {
  options: {
    retrieveSessionInfo(shardId: number): Promise<SessionInfo | null> | SessionInfo | null;
    updateSessionInfo(shardId: number, info: SessionInfo | null): Promise<void> | void;
  };
}

export default class GatewayCluster extends BaseCluster {
  protected async launch(): Promise<void> {
    const config = parseGatewayConfig(process.env);
    const log = createLogger('gateway', config.logLevel, {
      bot: config.bot.name,
      namespace: config.bot.namespace,
      pod: config.podIndex,
      cluster: this.id,
    });
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
    const connection = redis;
    const prefix = queuePrefix(config.bot);
    const queues = {
      interactions: new Queue(QUEUES.interactions, { connection, prefix }),
      events: new Queue(QUEUES.events, { connection, prefix }),
    };
    for (const q of Object.values(queues))
      q.on('error', (err) => log.debug({ err: err.message }, 'queue connection error'));
    const forwarder = new DispatchForwarder(
      queues,
      {
        events: config.events,
        generation: config.generation,
        batchSize: config.batchSize,
        batchDelayMs: config.batchDelayMs,
        bufferLimit: config.bufferLimit,
        probeWrite: () => redis.set(botKey(config.bot, 'gateway', 'write-probe'), '1', 'PX', 60_000),
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
    const throttler = new RedisIdentifyThrottler(redis, {
      keyPrefix: discordBudgetPrefix(config.bot, config.applicationId),
      maxConcurrency: config.maxConcurrency,
      windowMs: config.identifyWindowMs,
      onError: (err) => log.warn({ err: err.message }, 'identify queue: Redis error; still waiting'),
      onWait: (shardId, ms) => {
        metrics.identifyWait.observe(ms / 1000);
        log.info({ shard: shardId, waitedMs: ms }, 'identifying');
      },
    });

    const client = this.client;
    let closing = false;
    // Hooks into the @discordjs/ws manager discord.js builds at login: Redis identify
    // throttling, and sessions kept in Redis so a restarted process resumes.
    client.options.ws = {
      ...client.options.ws,
      buildIdentifyThrottler: () => throttler,
      buildStrategy: (manager: WsManagerLike) => {
        const inMemoryUpdate = manager.options.updateSessionInfo;
        manager.options.retrieveSessionInfo = async (shardId) => {
          const { info, fromRedis } = await sessions.retrieve(shardId);
          // discord.js keeps its own copy, which its RESUMED handler reads; a session that
          // came from Redis must be there too (else a RESUME that replays nothing, after a
          // restart in a quiet moment, crashes the cluster on every respawn).
          if (fromRedis && info) void inMemoryUpdate(shardId, { ...info });
          if (fromRedis)
            log.info(
              { shard: shardId, resumeFrom: info?.sequence ?? null },
              info ? 'resuming the stored session' : 'no stored session: identifying',
            );
          return info;
        };
        manager.options.updateSessionInfo = (shardId, info) => {
          void inMemoryUpdate(shardId, info);
          if (!closing) sessions.update(shardId, info);
        };
        return new djsWs.SimpleShardingStrategy(manager as never);
      },
    } as never;

    handleOnlySessionPackets(client);
    client.on('raw', (packet: { t?: string; d?: unknown; s?: number }, shardId: number) => {
      if (!packet.t) return;
      // With the sequence, the session keys events that have no id of their own.
      forwarder.accept(packet.t, packet.d, shardId, packet.s ?? 0, sessions.sessionId(shardId));
    });
    const myShards = (process.env.CLUSTER_SHARDS ?? '').split(',').map(Number);
    const up = new Set<number>();
    let announced = false;
    const report = (shardId: number, ready: boolean) => {
      metrics.shardStatus.set({ shard: String(shardId) }, ready ? 1 : 0);
      send({ shardwarden: 'shard', shardId, ready });
      if (ready) up.add(shardId);
      else up.delete(shardId);
      // Shards that RESUME get no READY, so discord.js never emits its ready event, which is
      // what Kurasuta waits for before it considers the cluster started (and otherwise kills
      // it). Announce it ourselves once every shard of this cluster is up.
      if (!announced && myShards.every((id) => up.has(id))) {
        announced = true;
        if (!client.isReady()) client.emit('ready' as never, client as never);
      }
    };
    client.on('shardReady', (id) => {
      metrics.sessionStarts.inc({ kind: 'identify' });
      log.info({ shard: id }, 'shard ready');
      report(id, true);
    });
    client.on('shardResume', (id, replayed) => {
      metrics.sessionStarts.inc({ kind: 'resume' });
      log.info({ shard: id, replayed }, 'shard resumed');
      report(id, true);
    });
    client.on('shardReconnecting', (id) => report(id, false));
    client.on('shardDisconnect', (event, id) => {
      log.warn({ shard: id, code: event.code }, 'shard disconnected');
      report(id, false);
    });
    client.on('error', (err) => log.error({ err: err.message }, 'client error'));
    const loopDelay = monitorEventLoopDelay({ resolution: 20 });
    loopDelay.enable();
    setInterval(() => {
      send({ shardwarden: 'alive', clusterId: this.id, loopDelayMs: loopDelay.max / 1e6 });
      loopDelay.reset();
    }, ALIVE_INTERVAL_MS).unref();
    setInterval(() => {
      for (const [id, shard] of client.ws.shards)
        if (shard.ping >= 0) metrics.heartbeatLatency.set({ shard: String(id) }, shard.ping / 1000);
    }, 5_000).unref();

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
        await Promise.all(Object.values(queues).map((q) => q.close().catch(() => undefined)));
        redis.disconnect();
        process.exit(0);
      })();
    });

    await client.login(config.token);
  }
}
