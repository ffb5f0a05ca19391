// One Kurasuta cluster process of a gateway pod: a discord.js v14 client for its shards whose
// every dispatch goes to the forwarder, with identify throttling and sessions in Redis.
import { createRequire } from 'node:module';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type * as Kurasuta from 'kurasuta';
import { AggregatorRegistry, register } from 'prom-client';
import { createLogger } from '../../observability/logger.js';
import { QUEUES, queuePrefix } from '../../queues/queue-names.js';
import { parseGatewayConfig } from '../config.js';
import { DispatchForwarder } from '../forwarding/dispatch-forwarder.js';
import { RedisIdentifyThrottler } from '../identify/redis-identify-throttler.js';
import { isShardwardenMessage, type ClusterMessage } from '../ipc.js';
import { GatewayMetrics } from '../metrics.js';
import { RedisSessionStore, type SessionInfo } from '../sessions/redis-session-store.js';

const require = createRequire(import.meta.url);
const { BaseCluster } = require('kurasuta') as typeof Kurasuta;
// The @discordjs/ws that discord.js itself uses (it may differ from the top-level one).
const djsWs = createRequire(require.resolve('discord.js'))('@discordjs/ws') as typeof import('@discordjs/ws');

interface WsManagerLike {
  options: {
    retrieveSessionInfo(shardId: number): Promise<SessionInfo | null> | SessionInfo | null;
    updateSessionInfo(shardId: number, info: SessionInfo | null): Promise<void> | void;
  };
  destroy(options?: { reason?: string; code?: number; recover?: number }): Promise<void>;
}

export default class GatewayCluster extends BaseCluster {
  protected async launch(): Promise<void> {
    const config = parseGatewayConfig(process.env);
    const log = createLogger('gateway', config.logLevel as 'info', {
      bot: config.botName,
      pod: config.podIndex,
      cluster: this.id,
    });
    new AggregatorRegistry(); // answers the primary's metrics requests
    const metrics = new GatewayMetrics(register);
    const send = (m: ClusterMessage) => process.send?.(m);

    const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false });
    redis.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
    const connection = { url: config.redisUrl };
    const prefix = queuePrefix(config.botName);
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
      },
      metrics,
      log,
    );
    const sessions = new RedisSessionStore(
      redis,
      config.botName,
      config.totalShards,
      500,
      600,
      (shardId, seq) => forwarder.safeSequence(shardId, seq),
    );
    const throttler = new RedisIdentifyThrottler(redis, {
      botName: config.botName,
      maxConcurrency: config.maxConcurrency,
      windowMs: config.identifyWindowMs,
      onWait: (shardId, ms) => {
        metrics.identifyWait.observe(ms / 1000);
        log.info({ shard: shardId, waitedMs: ms }, 'identifying');
      },
    });

    const client = this.client;
    let wsManager: WsManagerLike | undefined;
    // Hooks into the @discordjs/ws manager discord.js builds at login: Redis identify
    // throttling, and sessions kept in Redis so a restarted process resumes.
    client.options.ws = {
      ...client.options.ws,
      buildIdentifyThrottler: () => throttler,
      buildStrategy: (manager: WsManagerLike) => {
        wsManager = manager;
        const inMemoryUpdate = manager.options.updateSessionInfo;
        manager.options.retrieveSessionInfo = (shardId) => sessions.retrieve(shardId);
        manager.options.updateSessionInfo = (shardId, info) => {
          void inMemoryUpdate(shardId, info);
          sessions.update(shardId, info);
        };
        return new djsWs.SimpleShardingStrategy(manager as never);
      },
    } as never;

    client.on('raw', (packet: { t?: string; d?: unknown; s?: number }, shardId: number) => {
      if (packet.t) forwarder.accept(packet.t, packet.d, shardId, packet.s ?? 0);
    });
    const report = (shardId: number, ready: boolean) => {
      metrics.shardStatus.set({ shard: String(shardId) }, ready ? 1 : 0);
      send({ shardwarden: 'shard', shardId, ready });
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
    setInterval(() => {
      for (const [id, shard] of client.ws.shards)
        if (shard.ping >= 0) metrics.heartbeatLatency.set({ shard: String(id) }, shard.ping / 1000);
    }, 5_000).unref();

    process.on('message', (m: unknown) => {
      if (!isShardwardenMessage(m) || m.shardwarden !== 'shutdown') return;
      void (async () => {
        log.info('shutting down: closing shards resumably, flushing');
        // Close the shards so that they stay resumable (not client.destroy(), which ends sessions).
        await wsManager
          ?.destroy({ reason: 'gateway shutting down', recover: djsWs.WebSocketShardDestroyRecovery.Resume })
          .catch(() => undefined);
        const flushed = await forwarder.drain(m.deadlineMs);
        await sessions.flush().catch(() => undefined);
        send({ shardwarden: 'stopped', clusterId: this.id, flushed });
        await Promise.all(Object.values(queues).map((q) => q.close().catch(() => undefined)));
        redis.disconnect();
        process.exit(0);
      })();
    });

    await client.login(config.token);
  }
}
