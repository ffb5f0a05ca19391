// Gateway processes (the real entrypoint, as a pod would run it) against the simulator and Redis.
import { Queue } from 'bullmq';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  DEFAULT_NAMESPACE,
  QUEUES,
  queuePrefix,
  type BatchedDispatch,
} from '../../bot/queues/queue-names.js';
import { DispatchClaims } from '../../bot/worker/processing/dispatch-claims.js';
import { loadDispatches, planBatch } from '../../bot/worker/processing/event-batch.js';
import { makeTempDir, waitUntil, type ManagedProcess } from '../../testenv/index.js';
export { childPids } from '../../testenv/index.js';
import { loggedPort, startShardwarden } from '../support/built-entrypoint.js';
import { messagePayload, type DiscordSimulator } from '../../discord-simulator/index.js';

export const BOT = 'earbot';
/** The harness runs its processes without SHARDWARDEN_BOT_NAMESPACE: the default namespace's bot. */
export const BOT_REF = { namespace: DEFAULT_NAMESPACE, name: BOT };

export interface GatewayProcess {
  proc: ManagedProcess;
  port: number;
  metrics(): Promise<string>;
  ready(): Promise<boolean>;
}

export function gatewayEnv(
  sim: DiscordSimulator,
  redisUrl: string,
  podIndex: number,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    SHARDWARDEN_BOT_NAME: BOT,
    SHARDWARDEN_POD_INDEX: String(podIndex),
    SHARDWARDEN_TOTAL_SHARDS: '4',
    SHARDWARDEN_SHARDS_PER_POD: '4',
    // GATEWAY_TEST_CLUSTERS=1 runs these suites against the in-process shape (docs/gateway.md).
    SHARDWARDEN_CLUSTERS_PER_POD: process.env.GATEWAY_TEST_CLUSTERS ?? '2',
    SHARDWARDEN_MAX_CONCURRENCY: String(sim.gateway.sessionStartLimit().max_concurrency),
    SHARDWARDEN_INTENTS: 'Guilds,GuildMessages',
    SHARDWARDEN_EVENTS: 'INTERACTION_CREATE,MESSAGE_CREATE',
    SHARDWARDEN_HTTP_PORT: '0',
    // The simulators of these tests enforce a 1 s identify window, measured when their event
    // loop (this loaded test process) gets to each IDENTIFY; the gateways pace by 1.5 s, so a
    // lag of either process up to about 750 ms cannot turn correct pacing into a refusal (seen
    // at 250 ms of margin: "two pods over 8 shards" refused an identify under load).
    SHARDWARDEN_IDENTIFY_WINDOW_MS: '1500',
    DISCORD_TOKEN: sim.token,
    DISCORD_API_URL: sim.apiUrl,
    REDIS_URL: redisUrl,
    ...extra,
  };
}

const logDir = makeTempDir('gateway-logs');
let counter = 0;

export async function startGateway(env: Record<string, string>): Promise<GatewayProcess> {
  counter += 1;
  const proc = startShardwarden(
    `gateway-${env.SHARDWARDEN_POD_INDEX}-${counter}`,
    ['gateway'],
    env,
    join(logDir.path, `gateway-${counter}.log`),
  );
  const port = await loggedPort(proc);
  return {
    proc,
    port,
    metrics: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    ready: async () =>
      (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
  };
}

export async function waitReady(gw: GatewayProcess, timeoutMs = 60_000): Promise<void> {
  await waitUntil(`${gw.proc.name} /readyz`, () => gw.ready(), {
    process: gw.proc,
    timeoutMs,
    intervalMs: 200,
  });
}

export { metricSum } from '../../testenv/index.js';

export function queues(redisUrl: string) {
  const connection = { url: redisUrl };
  const prefix = queuePrefix(BOT_REF);
  return {
    interactions: new Queue(QUEUES.interactions, { connection, prefix }),
    events: new Queue(QUEUES.events, { connection, prefix }),
  };
}

export function message(i: number, guildId: string) {
  return messagePayload({ id: String(10_000_000 + i), guildId, channelId: '1' });
}

/** The dispatches waiting in a queue of event batches, in queue order (batch bodies read). */
export async function queuedDispatches(queue: Queue): Promise<BatchedDispatch[]> {
  const jobs = await queue.getJobs(['wait'], 0, -1, true);
  const redis = await queue.backend.client;
  return (await Promise.all(jobs.map((job) => loadDispatches(redis, job)))).flat();
}

/**
 * Of `dispatches`, those a worker would run: the worker's own claim script and plan, for one
 * owner. The same owner takes its claims back, so this can be asked again and again; no claim is
 * marked done. The claims live under a reader's own prefix (never the keys a worker of the bot
 * would read), for a minute.
 */
export async function runOnce(
  redisUrl: string,
  prefix: string,
  dispatches: readonly BatchedDispatch[],
): Promise<BatchedDispatch[]> {
  const redis = new Redis(redisUrl);
  try {
    const claims = new DispatchClaims(redis, `${prefix}:test-reader`, 60);
    const states = await claims.claim(
      { job: 'test-reader/', token: 'reader' },
      dispatches.map((d) => d.key),
    );
    return planBatch(dispatches, states).groups.flat();
  } finally {
    redis.disconnect();
  }
}
