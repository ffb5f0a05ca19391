// What the benchmarks that run shardwarden's own processes share (bench-gateway, bench-scale):
// starting the built entrypoint (a gateway pod process tree, a worker), waiting for its /readyz,
// reading its /metrics and Redis's CPU, and asking the simulator for a MESSAGE_CREATE stream.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { GATEWAY_MALLOC_ENV } from '../bot/runtime-contract.js';
import { messagePayload } from '../discord-simulator/index.js';
import { startProcess, waitUntil, type ManagedProcess } from '../testenv/processes.js';
import type { RunScope } from '../testenv/run-scope.js';
import { metricSum } from '../testenv/metrics-text.js';

/** The simulator as a benchmark's processes see it. */
export interface SimulatorUrls {
  info: { token: string; apiUrl: string; controlUrl: string };
}

/** The built entrypoint (`shardwarden gateway|worker`) as its own process, stopped with `scope`. */
export function startShardwarden(
  scope: RunScope,
  command: 'gateway' | 'worker',
  name: string,
  logDir: string,
  env: NodeJS.ProcessEnv,
): ManagedProcess {
  const proc = startProcess(
    name,
    process.execPath,
    [join('dist', 'bin', 'shardwarden.js'), command],
    join(logDir, `${name}.log`),
    { env },
  );
  return scope.own(proc, (p) => p.stop());
}

/** A gateway pod's environment for one bot's pod `podIndex`, as the operator renders it (docs/gateway.md). */
export function gatewayPodEnv(options: {
  bot: string;
  podIndex: number;
  shards: number;
  shardsPerPod: number;
  clustersPerPod: number;
  maxConcurrency: number;
  windowMs: number;
  sim: SimulatorUrls;
  redisUrl: string;
}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    SHARDWARDEN_BOT_NAME: options.bot,
    SHARDWARDEN_POD_INDEX: String(options.podIndex),
    SHARDWARDEN_TOTAL_SHARDS: String(options.shards),
    SHARDWARDEN_SHARDS_PER_POD: String(options.shardsPerPod),
    SHARDWARDEN_CLUSTERS_PER_POD: String(options.clustersPerPod),
    SHARDWARDEN_MAX_CONCURRENCY: String(options.maxConcurrency),
    SHARDWARDEN_IDENTIFY_WINDOW_MS: String(options.windowMs),
    SHARDWARDEN_INTENTS: 'Guilds,GuildMessages',
    // GUILD_CREATE is not forwarded: the startup flood is dropped at the door (and counted).
    SHARDWARDEN_EVENTS: 'MESSAGE_CREATE,INTERACTION_CREATE',
    SHARDWARDEN_HTTP_PORT: '0',
    DISCORD_TOKEN: options.sim.info.token,
    DISCORD_API_URL: options.sim.info.apiUrl,
    REDIS_URL: options.redisUrl,
    SHARDWARDEN_LOG_LEVEL: 'info',
    ...GATEWAY_MALLOC_ENV,
  };
}

/** The HTTP port a shardwarden process logged, once its /readyz answers 200. */
export async function readyPort(proc: ManagedProcess, timeoutMs = 300_000): Promise<number> {
  let port = 0;
  await waitUntil(
    `${proc.name} ready`,
    async () => {
      port = Number(/"port":(\d+)/.exec(readFileSync(proc.logFile, 'utf8'))?.[1] ?? 0);
      return (
        port > 0 &&
        (await fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        ))
      );
    },
    { process: proc, timeoutMs, intervalMs: 500 },
  ).catch(async (err) => {
    console.error(readFileSync(proc.logFile, 'utf8').slice(-2000));
    throw err;
  });
  return port;
}

/** A counter summed over the series of a process's /metrics that contain every one of `labels`. */
export async function metricTotal(port: number, name: string, ...labels: string[]): Promise<number> {
  return metricSum(await scrapeMetrics(port), name, ...labels);
}

/** A process's /metrics, once: several counters read from one scrape. */
export async function scrapeMetrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** CPU seconds Redis has used (INFO cpu: user + sys). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const value = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return value('used_cpu_user') + value('used_cpu_sys');
}

/**
 * A worker process (the real entrypoint) of `bot`, with only the benchmarks' handler module
 * (latency-handler.ts: records the latency stream's figures in `latencyDir`), once ready.
 */
export async function startBenchWorker(
  scope: RunScope,
  options: {
    name: string;
    bot: string;
    logDir: string;
    latencyDir: string;
    redisUrl: string;
    /** Added to (and over) the worker's environment. */
    env?: NodeJS.ProcessEnv;
  },
  sim: SimulatorUrls,
): Promise<{ proc: ManagedProcess; port: number }> {
  const proc = startShardwarden(scope, 'worker', options.name, options.logDir, {
    ...process.env,
    SHARDWARDEN_BOT_NAME: options.bot,
    SHARDWARDEN_HTTP_PORT: '0',
    SHARDWARDEN_PUBLIC_HTTP_PORT: '0',
    SHARDWARDEN_HANDLER_MODULES: join(process.cwd(), 'dist', 'benchmarks', 'latency-handler.js'),
    SHARDWARDEN_BENCH_LATENCY_DIR: options.latencyDir,
    DISCORD_TOKEN: sim.info.token,
    DISCORD_API_URL: sim.info.apiUrl,
    REDIS_URL: options.redisUrl,
    SHARDWARDEN_LOG_LEVEL: 'info',
    ...options.env,
  });
  return { proc, port: await readyPort(proc) };
}

/**
 * `count` MESSAGE_CREATEs from the simulator, round-robin over its guilds, each in its guild's
 * first channel: flat out, or paced at `ratePerSecond`. Resolves when the simulator sent them.
 */
export async function streamMessages(
  controlUrl: string,
  options: { count: number; ratePerSecond?: number; stampTimestamp?: boolean; content?: string },
): Promise<void> {
  const res = await fetch(`${controlUrl}/dispatch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      type: 'MESSAGE_CREATE',
      count: options.count,
      ratePerSecond: options.ratePerSecond ?? 0,
      stampTimestamp: options.stampTimestamp ?? false,
      firstChannel: true,
      // The simulator gives each its own id, guild and the guild's first channel.
      data: messagePayload({ id: '0', guildId: '0', channelId: '0', content: options.content ?? 'hello' }),
    }),
  });
  if (!res.ok) throw new Error(`stream failed: ${res.status}`);
}
