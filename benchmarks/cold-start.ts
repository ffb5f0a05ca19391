// Benchmark: cold start at Discord's identify limit (issue 16, item 4). A bot of N shards with
// max_concurrency C cannot be READY sooner than ceil(N / C) identify windows; this starts real
// gateway pods (the built entrypoint, Kurasuta primary + cluster processes, discord.js, the
// Redis identify throttler) against the simulator with Discord's 5 s window and one Redis, and
// times each shape from spawning its pods to every pod's /readyz answering 200. The simulator's
// identify records give the spacing per bucket and any violation of the window.
// Prints JSON ending with `targets`: per shape, time to all READY ÷ the floor ≤ 1.1.
//   BENCH_SHARDS (16), BENCH_PODS ("1,4"), BENCH_CONCURRENCY ("1,16"), BENCH_CLUSTERS_PER_POD (2,
//   the CRD's default), BENCH_GUILDS (10 per shard), BENCH_WINDOW_MS (5000) override;
//   BENCH_LOG_DIR keeps the pods' logs there (else they go with the run).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { DiscordSimulator } from '../discord-simulator/index.js';
import {
  childPids,
  cpuSeconds,
  makeTempDir,
  runScope,
  startProcess,
  startRedis,
  waitUntil,
  type ManagedProcess,
} from '../testenv/index.js';
import { coldStartFigures, type ColdStartShape } from './cold-start-figures.js';
import { milestoneLines, podTimeline } from './cold-start-timeline.js';
import { atMost, printFigures } from './targets.js';

const setting = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const list = (name: string, fallback: string) => (process.env[name] ?? fallback).split(',').map(Number);
const shards = setting('BENCH_SHARDS', 16);
const windowMs = setting('BENCH_WINDOW_MS', 5_000);
const clustersPerPod = setting('BENCH_CLUSTERS_PER_POD', 2);
const guilds = setting('BENCH_GUILDS', shards * 10);
const shapes: ColdStartShape[] = list('BENCH_CONCURRENCY', '1,16').flatMap((maxConcurrency) =>
  list('BENCH_PODS', '1,4').map((pods) => ({ shards, pods, maxConcurrency })),
);
const MAX_RATIO = 1.1;

// Whatever ends the run (its end, a failure, Ctrl-C), what it started stops.
const scope = runScope();
const redis = scope.own(await startRedis(), (r) => r.close());
const redisClient = scope.own(new Redis(redis.url), (r) => r.disconnect());
const logs = process.env.BENCH_LOG_DIR
  ? { path: process.env.BENCH_LOG_DIR }
  : scope.own(makeTempDir('bench-cold-start'), (d) => d.remove());

function podEnv(sim: DiscordSimulator, shape: ColdStartShape, podIndex: number): NodeJS.ProcessEnv {
  const shardsPerPod = Math.ceil(shape.shards / shape.pods);
  return {
    ...process.env,
    SHARDWARDEN_BOT_NAME: 'coldstart',
    SHARDWARDEN_POD_INDEX: String(podIndex),
    SHARDWARDEN_TOTAL_SHARDS: String(shape.shards),
    SHARDWARDEN_SHARDS_PER_POD: String(shardsPerPod),
    // As the operator renders it: the spec's value (1 means one process, no primary), not capped
    // by the pod's shards (the manager never forks more clusters than shards).
    SHARDWARDEN_CLUSTERS_PER_POD: String(clustersPerPod),
    SHARDWARDEN_MAX_CONCURRENCY: String(shape.maxConcurrency),
    SHARDWARDEN_IDENTIFY_WINDOW_MS: String(windowMs),
    SHARDWARDEN_INTENTS: 'Guilds,GuildMessages',
    SHARDWARDEN_EVENTS: 'MESSAGE_CREATE,INTERACTION_CREATE',
    SHARDWARDEN_HTTP_PORT: '0',
    DISCORD_TOKEN: sim.token,
    DISCORD_API_URL: sim.apiUrl,
    REDIS_URL: redis.url,
    SHARDWARDEN_LOG_LEVEL: 'info',
  };
}

/** The HTTP port a pod logged in its "gateway started" line, or 0 before that. */
function loggedPort(pod: ManagedProcess): number {
  return Number(/"port":(\d+)/.exec(readFileSync(pod.logFile, 'utf8'))?.[1] ?? 0);
}

/** Polls a pod's /readyz until it answers 200; resolves with the epoch ms it first did (to 50 ms). */
async function readyAt(pod: ManagedProcess, timeoutMs: number): Promise<number> {
  let at = 0;
  await waitUntil(
    `${pod.name} /readyz`,
    async () => {
      const port = loggedPort(pod);
      if (port === 0) return false;
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) at = Date.now();
      return ok;
    },
    { process: pod, timeoutMs, intervalMs: 50 },
  );
  return at;
}

/**
 * Each pod's start as its processes logged it, once every cluster logged its shards READY (the
 * line can follow the /readyz the pod already answered).
 */
async function podTimelines(pods: ManagedProcess[], startedAt: number) {
  const linesOf = (pod: ManagedProcess) => milestoneLines(readFileSync(pod.logFile, 'utf8'));
  const count = (lines: ReturnType<typeof milestoneLines>, m: string) =>
    lines.filter((l) => l.milestone === m).length;
  const allLogged = (pod: ManagedProcess) => {
    const lines = linesOf(pod);
    return (
      count(lines, 'modules loaded') > 0 && count(lines, 'shards ready') === count(lines, 'modules loaded')
    );
  };
  // A line still missing after that shows as null in the figures.
  await waitUntil('every cluster logged its shards READY', async () => pods.every(allLogged), {
    timeoutMs: 10_000,
  }).catch(() => undefined);
  return pods.map((p) => podTimeline(linesOf(p), startedAt));
}

/** CPU seconds the pods' primaries and cluster processes have used so far. */
function podsCpuSeconds(pods: ManagedProcess[]) {
  const sum = (pids: number[]) => Math.round(pids.reduce((s, pid) => s + cpuSeconds(pid), 0) * 100) / 100;
  const primaries = pods.map((p) => p.child.pid!);
  return { primaries: sum(primaries), clusters: sum(primaries.flatMap(childPids)) };
}

async function coldStart(shape: ColdStartShape) {
  const sim = await DiscordSimulator.start({
    seed: 1,
    guilds,
    guildSize: { members: 0, channels: 2, roles: 1 },
    gateway: { maxConcurrency: shape.maxConcurrency, identifyWindowMs: windowMs },
  });
  try {
    // No identify lock or session of an earlier shape: every shape starts cold.
    await redisClient.flushall();
    const loadAverage = loadavg()[0]!;
    const startedAt = Date.now();
    const pods = Array.from({ length: shape.pods }, (_, i) =>
      startProcess(
        `gateway-c${shape.maxConcurrency}-p${i}`,
        process.execPath,
        [join('dist', 'bin', 'shardwarden.js'), 'gateway'],
        join(logs.path, `c${shape.maxConcurrency}-pods${shape.pods}-${i}.log`),
        { env: podEnv(sim, shape, i) },
      ),
    );
    try {
      // Generous: a broken start shows as a timeout, a slow one as its figure.
      const timeoutMs = 3 * (Math.ceil(shape.shards / shape.maxConcurrency) * windowMs) + 60_000;
      // No pod is READY before all its shards identified: until then only the in-process
      // simulator is watched, so polling the pods' /readyz adds no work while they start.
      await waitUntil(
        'every shard identified',
        async () => sim.recorder.identifies.filter((r) => !r.refused).length >= shape.shards,
        { timeoutMs, intervalMs: 10 },
      );
      const podsReadyAt = await Promise.all(pods.map((p) => readyAt(p, timeoutMs)));
      const cpuSecondsToReady = podsCpuSeconds(pods);
      const startup = await podTimelines(pods, startedAt);
      const records = sim.recorder.identifies;
      const figures = coldStartFigures(shape, windowMs, {
        startedAt,
        podsReadyAt,
        identifies: records.filter((r) => !r.refused),
        refused: records.filter((r) => r.refused).length,
        violations: sim.recorder.violations.filter((v) => v.kind === 'identify-concurrency').length,
      });
      // The machine's 1-minute load average when the pods started: other work shares its cores.
      return { ...figures, cpuSecondsToReady, startup, loadAverage: Math.round(loadAverage * 10) / 10 };
    } finally {
      await Promise.all(pods.map((p) => p.stop()));
    }
  } finally {
    await sim.stop();
  }
}

const results: Awaited<ReturnType<typeof coldStart>>[] = [];
for (const shape of shapes) results.push(await coldStart(shape));

const shapeName = (f: ColdStartShape) =>
  `${f.shards} shards in ${f.pods} pod${f.pods === 1 ? '' : 's'}, max_concurrency ${f.maxConcurrency}`;
printFigures(
  {
    identifyWindowMs: windowMs,
    clustersPerPod,
    guilds,
    shapes: results,
  },
  results.map((f) =>
    atMost(`time to all shards READY / ceil(N / C) x 5 s, ${shapeName(f)}`, f.ratio, MAX_RATIO),
  ),
);
await scope.stop();
