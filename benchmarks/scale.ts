// Benchmark: the largest shape this machine holds, against docs/scaling.md's model (issue 16,
// item 5). Real gateway pod process trees (the built entrypoint: Kurasuta primary + cluster
// processes on @discordjs/ws, the Redis identify throttle) carry every shard of a bot against
// the simulator (its own process, Discord's 5 s identify window), one Redis, and worker processes
// (the worker entrypoint, a handler that does nothing) consume the stream. It measures what the
// model predicts:
//   1. time from spawning the pods to every pod READY, against ceil(N / C) windows;
//   2. the gateway's memory once every guild's GUILD_CREATE is in, then again after as many
//      guilds again join the running shards (the per-guild memory, and the CPU per GUILD_CREATE);
//   3. MESSAGE_CREATE streams paced at each of BENCH_RATES, round-robin over the first guilds
//      (a step's count of them: every shard, since a shard's guilds are spread): CPU per
//      dispatch of the gateway, Redis, the workers and the simulator, the mean job size, the
//      backlog (received by the gateway, not yet handled by a worker) sampled each second and
//      its growth, dispatch → handler latency, Redis memory per dispatch (claim keys), the mean
//      enqueue round trip (what the batch size follows). A step is sustained when the workers
//      handled ≥ 0.9 of what the simulator actually sent and the backlog did not grow.
// The peak RSS of every tier (sampled each second) is printed against ~6 GiB. A dropped
// MESSAGE_CREATE (e.g. a full buffer) fails the run at once, naming the count.
// Costs: 7-9 minutes and 5+ GB at the defaults; small BENCH_SHARDS/BENCH_GUILDS_PER_SHARD for a check.
// Prints JSON: the measured figures, the model's prediction for the same shape beside them
// (`comparison`: predicted, measured, ratio), ending with `targets`.
//   BENCH_SHARDS (256), BENCH_PODS (8), BENCH_CLUSTERS_PER_POD (2), BENCH_GUILDS_PER_SHARD (1000),
//   BENCH_ADDED_GUILDS_PER_SHARD (1000; 0 skips step 2's second reading), BENCH_CHANNELS (5),
//   BENCH_ROLES (3), BENCH_CONCURRENCY (16), BENCH_WINDOW_MS (5000), BENCH_WORKERS (3),
//   BENCH_RATES ("2560,5120,10240": λ = 5, 10, 20 per 1,000 guilds with the joined guilds),
//   BENCH_STEP_SECONDS (20), BENCH_IDLE_SECONDS (15: the idle span whose CPU rate is taken off
//   each step's for the marginal cost per dispatch), BENCH_FLAT_OUT_DISPATCHES (0: a flat-out
//   step of that many after the paced ones, printed as `flatOut`; a dispatch the gateways drop
//   fails it) override; BENCH_LOG_DIR keeps the processes' logs there.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { DEFAULT_NAMESPACE, QUEUES, queuePrefix } from '../bot/queues/queue-names.js';
import { LATENCY_CONTENT } from './latency-handler.js';
import { coldStartFigures } from './cold-start-figures.js';
import { compared, predict, type ScaleShape } from './scale-model.js';
import {
  gatewayPodEnv,
  metricTotal,
  readyPort,
  redisCpuSeconds,
  startBenchWorker,
  startShardwarden,
  streamMessages,
} from './shardwarden-processes.js';
import { startSimulatorWithOptions } from './simulator-process.js';
import { atLeast, atMost, printFigures } from './targets.js';
import {
  childPids,
  cpuSeconds,
  makeTempDir,
  memoryMb,
  runScope,
  startRedis,
  waitUntil,
} from '../testenv/index.js';

const setting = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`${name} must be a number >= 0, got ${process.env[name]}`);
  return value;
};
const shards = setting('BENCH_SHARDS', 256);
const pods = setting('BENCH_PODS', 8);
const clustersPerPod = setting('BENCH_CLUSTERS_PER_POD', 2);
const guildsPerShard = setting('BENCH_GUILDS_PER_SHARD', 1_000);
const addedPerShard = setting('BENCH_ADDED_GUILDS_PER_SHARD', 1_000);
const maxConcurrency = setting('BENCH_CONCURRENCY', 16);
const windowMs = setting('BENCH_WINDOW_MS', 5_000);
const workerCount = setting('BENCH_WORKERS', 3);
const stepSeconds = setting('BENCH_STEP_SECONDS', 20);
const idleSeconds = setting('BENCH_IDLE_SECONDS', 15);
// A flat-out step after the paced ones, same shards and load: whether the paced steps' CPU per
// dispatch is the pacing's or the machine's (docs/scaling.md). 0: none.
const flatOutDispatches = setting('BENCH_FLAT_OUT_DISPATCHES', 0);
const rates = (process.env.BENCH_RATES ?? '2560,5120,10240').split(',').map(Number);
if (rates.some((r) => !(r > 0)))
  throw new Error(`BENCH_RATES must be rates > 0, got ${process.env.BENCH_RATES}`);
if (shards % pods !== 0)
  throw new Error(`BENCH_SHARDS (${shards}) must be a multiple of BENCH_PODS (${pods})`);
const shardsPerPod = shards / pods;
if (shardsPerPod % clustersPerPod !== 0)
  throw new Error(
    `shards per pod (${shardsPerPod}) must be a multiple of BENCH_CLUSTERS_PER_POD (${clustersPerPod})`,
  );
// Small guilds (3.7 KB GUILD_CREATEs): with bench-gateway's 9.6 KB ones the simulator, sending
// each shard's 1,000 after its READY at once, held 2.5 GB of them unread on a loaded machine
// and ran out of its 4 GB heap (twice). Most guilds of a large bot are small.
const guildSize = { members: 0, channels: setting('BENCH_CHANNELS', 5), roles: setting('BENCH_ROLES', 3) };
const guilds = shards * guildsPerShard;
const addedGuilds = shards * addedPerShard;
// Guilds the stream can reach: the simulator round-robins from its first guild, so a step
// reaches min(its count, these) of them.
const streamGuilds = guilds + addedGuilds;
const bot = 'scale';
const shape: ScaleShape = {
  shards,
  pods,
  clustersPerPod,
  guilds,
  maxConcurrency,
  identifyWindowMs: windowMs,
  batchDelayMs: 5, // the gateway's default SHARDWARDEN_BATCH_DELAY_MS, which this run keeps
};

// Whatever ends the run (its end, a failure, Ctrl-C), what it started stops.
const scope = runScope();
const logs = process.env.BENCH_LOG_DIR
  ? { path: process.env.BENCH_LOG_DIR }
  : scope.own(makeTempDir('bench-scale'), (d) => d.remove());
const latencyDir = scope.own(makeTempDir('bench-scale-latency'), (d) => d.remove());
const redis = scope.own(await startRedis(), (r) => r.close());
const redisClient = scope.own(new Redis(redis.url), (r) => r.disconnect());
const sim = scope.own(
  await startSimulatorWithOptions({
    seed: 1,
    guilds,
    guildSize,
    gateway: { maxConcurrency, identifyWindowMs: windowMs },
  }),
  (s) => s.child.kill('SIGTERM'),
);

const podEnv = (podIndex: number) =>
  gatewayPodEnv({
    bot,
    podIndex,
    shards,
    shardsPerPod,
    clustersPerPod,
    maxConcurrency,
    windowMs,
    sim,
    redisUrl: redis.url,
  });

const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const sumOf = (values: number[]) => values.reduce((s, n) => s + n, 0);

// The workers first (idle until the stream), so their start does not share the identify windows.
const workers = await Promise.all(
  Array.from({ length: workerCount }, (_, i) =>
    startBenchWorker(
      scope,
      { name: `worker-${i}`, bot, logDir: logs.path, latencyDir: latencyDir.path, redisUrl: redis.url },
      sim,
    ),
  ),
);

// 1. Cold start: every pod at once, as a StatefulSet with parallel pod management starts them.
const loadAtStart = loadavg()[0]!;
const startedAt = Date.now();
const podProcs = Array.from({ length: pods }, (_, i) =>
  startShardwarden(scope, 'gateway', `gateway-${i}`, logs.path, podEnv(i)),
);
/** Resident MB of `pids` now (a process gone meanwhile counts 0). */
const rssMb = (pids: number[]) =>
  sumOf(
    pids.map((pid) => {
      try {
        return memoryMb(pid).rss;
      } catch {
        return 0;
      }
    }),
  );
// The run must fit beside other people's work: every tier's peak resident memory, each second.
const peakRss = { gateway: 0, workers: 0, simulator: 0, redis: 0, total: 0 };
async function sampleRss() {
  const now = {
    // The pods' process trees, from their start (cluster processes come and go meanwhile).
    gateway: rssMb(podProcs.flatMap((p) => [p.child.pid!, ...childPids(p.child.pid!)])),
    workers: rssMb(workers.map((w) => w.proc.child.pid!)),
    simulator: rssMb([sim.child.pid!]),
    redis: Number(/used_memory_rss:(\d+)/.exec(await redisClient.info('memory'))?.[1] ?? 0) / 2 ** 20,
  };
  const total = now.gateway + now.workers + now.simulator + now.redis;
  for (const [k, v] of Object.entries({ ...now, total }))
    peakRss[k as keyof typeof peakRss] = Math.max(peakRss[k as keyof typeof peakRss], v);
}
scope.own(
  setInterval(() => void sampleRss().catch(() => undefined), 1_000),
  (t) => clearInterval(t),
);
const readyTimeoutMs = 3 * predict(shape, 0).floorSeconds * 1000 + 120_000;
const podsReady = await Promise.all(
  podProcs.map(async (p) => ({ port: await readyPort(p, readyTimeoutMs), at: Date.now() })),
);
const readySeconds = (Math.max(...podsReady.map((p) => p.at)) - startedAt) / 1000;
const ports = podsReady.map((p) => p.port);

/** The simulator's records of the cold start: IDENTIFYs (refused ones by reason) and violations. */
async function identifyRecords() {
  const get = async <T>(kind: string) =>
    (await (await fetch(`${sim.info.controlUrl}/records/${kind}`)).json()) as T;
  const identifies = await get<{ at: number; shardId: number; refused?: string }[]>('identifies');
  const violations = await get<{ kind: string; detail: string }[]>('violations');
  // How far after its bucket's previous IDENTIFY a refused one came (the simulator's detail):
  // near the window, a late sender; near 0, IDENTIFYs bunched on the way.
  const gaps = violations
    .filter((v) => v.kind === 'identify-concurrency')
    .map((v) => Number(/(\d+) ms after/.exec(v.detail)?.[1]))
    .filter(Number.isFinite)
    .sort((x, y) => x - y);
  const accepted = identifies.filter((i) => !i.refused);
  const count = <T>(items: T[], key: (item: T) => string) =>
    items.reduce<Record<string, number>>((m, i) => ({ ...m, [key(i)]: (m[key(i)] ?? 0) + 1 }), {});
  return {
    // Where the cold start's time went (the same arithmetic as bench-cold-start's).
    figures: coldStartFigures({ shards, pods, maxConcurrency }, windowMs, {
      startedAt,
      podsReadyAt: podsReady.map((p) => p.at),
      identifies: accepted,
      refused: identifies.length - accepted.length,
      violations: violations.length,
    }),
    accepted: accepted.length,
    // More accepted IDENTIFYs than shards: a shard identified again (each one a session start).
    shardsIdentifiedMoreThanOnce: Object.values(count(accepted, (i) => String(i.shardId))).filter(
      (n) => n > 1,
    ).length,
    refused: count(
      identifies.filter((i) => i.refused),
      (i) => i.refused!,
    ),
    violations: count(violations, (v) => v.kind),
    refusedGapMs: gaps.length
      ? { min: gaps[0], median: gaps[Math.floor(gaps.length / 2)], max: gaps.at(-1) }
      : undefined,
  };
}
const identifiesAtReady = await identifyRecords();
const primaryPids = podProcs.map((p) => p.child.pid!);
// One cluster per pod may run in the primary itself (no children): then the primaries are the clusters.
const childClusters = primaryPids.flatMap(childPids);
const clusterPids = clustersPerPod === 1 && childClusters.length === 0 ? primaryPids : childClusters;
if (clusterPids.length !== pods * clustersPerPod)
  throw new Error(`expected ${pods * clustersPerPod} cluster processes, found ${clusterPids.length}`);
const primaryOnlyPids = primaryPids.filter((pid) => !clusterPids.includes(pid));

/** A gateway counter summed over every pod (each pod's /metrics sums its cluster processes). */
const gatewayTotal = (name: string, ...labels: string[]) =>
  Promise.all(ports.map((port) => metricTotal(port, name, ...labels))).then(sumOf);
const received = (type: string) =>
  gatewayTotal('shardwarden_gateway_dispatches_received_total', `type="${type}"`);
const workersTotal = (name: string, ...labels: string[]) =>
  Promise.all(workers.map((w) => metricTotal(w.port, name, ...labels))).then(sumOf);
const dropped = () => gatewayTotal('shardwarden_gateway_dispatches_dropped_total', `type="MESSAGE_CREATE"`);
/** Seconds the gateways' enqueues took in all, and how many there were (the mean round trip). */
const enqueues = async () => ({
  seconds: await gatewayTotal('shardwarden_gateway_enqueue_latency_seconds_sum'),
  count: await gatewayTotal('shardwarden_gateway_enqueue_latency_seconds_count'),
});
const handled = () =>
  workersTotal('shardwarden_worker_dispatches_total', `type="MESSAGE_CREATE"`, `outcome="completed"`);
const jobsCompleted = () =>
  workersTotal('shardwarden_worker_jobs_total', `queue="${QUEUES.events}"`, `outcome="completed"`);

/** CPU seconds so far of each tier (Redis from its INFO, the others from /proc). */
async function cpuNow() {
  const of = (pids: number[]) => sumOf(pids.map(cpuSeconds));
  return {
    primaries: of(primaryOnlyPids),
    clusters: of(clusterPids),
    redis: await redisCpuSeconds(redisClient),
    workers: of(workers.map((w) => w.proc.child.pid!)),
    simulator: cpuSeconds(sim.child.pid!),
  };
}
type Cpu = Awaited<ReturnType<typeof cpuNow>>;
const cpuSince = (before: Cpu, after: Cpu): Cpu =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof Cpu]])) as Cpu;

async function allGuildCreates(expected: number, what: string, intervalMs = 1_000): Promise<void> {
  await waitUntil(what, async () => (await received('GUILD_CREATE')) >= expected, {
    timeoutMs: 600_000,
    intervalMs,
  });
}
const JOIN_CHUNK = 4_096;

/** Anonymous and resident memory of the primaries and the cluster processes, settled. */
async function gatewayMemory() {
  // Let the last GUILD_CREATEs' garbage go before reading (read the same way both times).
  await new Promise((r) => setTimeout(r, 2_000));
  const read = (pids: number[]) => {
    const m = pids.map(memoryMb);
    return {
      anonymousMb: round(sumOf(m.map((x) => x.anonymous)), 1),
      rssMb: round(sumOf(m.map((x) => x.rss)), 1),
    };
  };
  const clusters = clusterPids.map(memoryMb).map((m) => m.anonymous);
  return {
    primaries: read(primaryOnlyPids),
    clusters: read(clusterPids),
    clusterAnonymousMb: { min: round(Math.min(...clusters), 1), max: round(Math.max(...clusters), 1) },
  };
}
const totalAnonymous = (m: Awaited<ReturnType<typeof gatewayMemory>>) =>
  m.primaries.anonymousMb + m.clusters.anonymousMb;

await allGuildCreates(guilds, `all ${guilds} GUILD_CREATEs received`);
const guildsInSeconds = (Date.now() - startedAt) / 1000;
const startupCpu = await cpuNow();
const memoryAtStart = await gatewayMemory();

// 2. As many guilds again join the running shards: what the gateway keeps per guild, and what a
// GUILD_CREATE costs it without the processes' own start in the figure.
let joined: { memory: Awaited<ReturnType<typeof gatewayMemory>>; cpu: Cpu; seconds: number } | undefined;
if (addedGuilds > 0) {
  const before = await cpuNow();
  const t0 = performance.now();
  // In chunks, each received before the next is asked for: the simulator sends a chunk's
  // GUILD_CREATEs in one go, and unread they wait in its heap (all at once: gigabytes).
  for (let added = 0; added < addedGuilds;) {
    const count = Math.min(JOIN_CHUNK, addedGuilds - added);
    const res = await fetch(`${sim.info.controlUrl}/guilds`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ count }),
    });
    if (!res.ok) throw new Error(`adding guilds failed: ${res.status}`);
    added += count;
    await allGuildCreates(guilds + added, `${added} joined guilds' GUILD_CREATEs received`, 250);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSince(before, await cpuNow());
  joined = { memory: await gatewayMemory(), cpu, seconds };
}

// 3. Paced streams through the workers.
const queue = scope.own(
  new Queue(QUEUES.events, {
    connection: { url: redis.url },
    prefix: queuePrefix({ namespace: DEFAULT_NAMESPACE, name: bot }),
  }),
  (q) => q.close(),
);
const unfinishedJobs = async () =>
  sumOf(Object.values(await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized')));
const redisUsedBytes = async () =>
  Number(/used_memory:(\d+)/.exec(await redisClient.info('memory'))?.[1] ?? 0);
const latencyLinesSeen = new Map<string, number>();
/** The latencies the workers recorded since the last call. */
function newLatencies(): number[] {
  return readdirSync(latencyDir.path).flatMap((f) => {
    const lines = readFileSync(join(latencyDir.path, f), 'utf8').split('\n').filter(Boolean);
    const seen = latencyLinesSeen.get(f) ?? 0;
    latencyLinesSeen.set(f, lines.length);
    return lines.slice(seen).map(Number);
  });
}
const percentile = (sorted: number[], q: number) =>
  sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? 0;

/** Least-squares slope of `ys` over `xs` (per second). */
function slope(xs: number[], ys: number[]): number {
  const mx = sumOf(xs) / xs.length;
  const my = sumOf(ys) / ys.length;
  const cov = sumOf(xs.map((x, i) => (x - mx) * (ys[i]! - my)));
  const varX = sumOf(xs.map((x) => (x - mx) ** 2));
  return varX === 0 ? 0 : cov / varX;
}

type Sample = { t: number; received: number; handled: number };
/**
 * Received and handled MESSAGE_CREATEs (since the counts given) each second until `done()`, so
 * the idle span and the streams pay for the same scrapes.
 */
async function sampleUntil(
  wake: Promise<unknown>,
  done: () => boolean,
  receivedBefore: number,
  handledBefore: number,
): Promise<Sample[]> {
  const t0 = performance.now();
  const samples: Sample[] = [];
  while (!done()) {
    const [r, h] = await Promise.all([received('MESSAGE_CREATE'), handled()]);
    samples.push({
      t: (performance.now() - t0) / 1000,
      received: r - receivedBefore,
      handled: h - handledBefore,
    });
    await Promise.race([wake, new Promise((r) => setTimeout(r, 1_000))]);
  }
  return samples;
}

const scaled = (c: Cpu, factor: number): Cpu =>
  Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v * factor])) as Cpu;

// The idle span: every shard connected, no stream. Its CPU per second is each tier's floor.
const idle = await (async () => {
  const seconds = idleSeconds;
  const before = await cpuNow();
  const [r, h] = await Promise.all([received('MESSAGE_CREATE'), handled()]);
  const t0 = performance.now();
  const over = new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  await sampleUntil(over, () => performance.now() - t0 >= seconds * 1000, r, h);
  const elapsed = (performance.now() - t0) / 1000;
  return { seconds: elapsed, cpu: cpuSince(before, await cpuNow()) };
})();

/** A stream held at `rate`/s for stepSeconds, then drained: its figures. */
async function pacedStep(rate: number, count = Math.round(rate * stepSeconds)) {
  const what = rate > 0 ? `${rate}/s` : 'flat-out';
  newLatencies();
  const [receivedBefore, handledBefore, jobsBefore, redisBytesBefore, cpuBefore, droppedBefore, enqBefore] =
    await Promise.all([
      received('MESSAGE_CREATE'),
      handled(),
      jobsCompleted(),
      redisUsedBytes(),
      cpuNow(),
      dropped(),
      enqueues(),
    ]);
  const t0 = performance.now();
  let sentSeconds = 0;
  const sending = streamMessages(sim.info.controlUrl, {
    count,
    ratePerSecond: rate,
    stampTimestamp: true,
    content: LATENCY_CONTENT,
  }).then(() => (sentSeconds = (performance.now() - t0) / 1000));
  const samples = await sampleUntil(sending, () => sentSeconds > 0, receivedBefore, handledBefore);
  const atEnd = samples.at(-1) ?? { t: sentSeconds, received: 0, handled: 0 };
  await waitUntil(
    `the ${what} stream handled and its jobs completed`,
    async () => {
      // A dropped dispatch is never handled: say so now, not after the drain's timeout.
      const lost = (await dropped()) - droppedBefore;
      if (lost > 0) throw new Error(`the gateways dropped ${lost} MESSAGE_CREATEs of the ${what} stream`);
      return (await handled()) - handledBefore >= count && (await unfinishedJobs()) === 0;
    },
    { timeoutMs: 600_000, intervalMs: 250 },
  );
  const enqAfter = await enqueues();
  const enqueueRoundTripMs =
    ((enqAfter.seconds - enqBefore.seconds) * 1000) / Math.max(1, enqAfter.count - enqBefore.count);
  const drainSeconds = (performance.now() - t0) / 1000 - sentSeconds;
  const cpu = cpuSince(cpuBefore, await cpuNow());
  // What the same span costs with no stream (heartbeats, pollers, this benchmark's scrapes).
  const marginal = cpuSince(scaled(idle.cpu, (sentSeconds + drainSeconds) / idle.seconds), cpu);
  const jobs = (await jobsCompleted()) - jobsBefore;
  const redisBytes = (await redisUsedBytes()) - redisBytesBefore;
  const latencies = newLatencies().sort((x, y) => x - y);
  const perDispatch = (seconds: number) => round((seconds * 1e6) / count, 1);
  const perDispatchOf = (c: Cpu) => ({
    gateway: perDispatch(c.primaries + c.clusters),
    gatewayPrimaries: perDispatch(c.primaries),
    redis: perDispatch(c.redis),
    workers: perDispatch(c.workers),
    simulator: perDispatch(c.simulator),
  });
  // The backlog: received by a gateway, not yet handled by a worker. Its growth over the
  // second half of the step (the first includes the pipeline filling).
  const backlog = samples.map((s) => s.received - s.handled);
  const half = samples.filter((s) => s.t >= sentSeconds / 2);
  const backlogGrowthPerSecond =
    half.length >= 3
      ? slope(
          half.map((s) => s.t),
          half.map((s) => s.received - s.handled),
        )
      : 0;
  const sendRate = count / sentSeconds;
  // Judged against what the simulator actually sent (it may fall short of the asked rate on a
  // loaded machine: not the bot's failure), over the second half, past the pipeline's filling.
  const first = half[0];
  const halfSeconds = first ? atEnd.t - first.t : 0;
  const handledRate = first && halfSeconds > 0 ? (atEnd.handled - first.handled) / halfSeconds : 0;
  const sentRateHalf = first && halfSeconds > 0 ? (atEnd.received - first.received) / halfSeconds : sendRate;
  const sustained = handledRate >= 0.9 * sendRate && backlogGrowthPerSecond <= 0.05 * sendRate;
  return {
    ratePerSecond: rate,
    dispatches: count,
    perThousandGuildsSent: round((sendRate * 1000) / Math.min(count, streamGuilds), 2),
    sentPerSecond: Math.round(sendRate),
    simulatorFellShort: sendRate < 0.95 * rate,
    receivedPerSecondSecondHalf: Math.round(sentRateHalf),
    handledPerSecondSecondHalf: Math.round(handledRate),
    backlog: {
      max: Math.max(0, ...backlog),
      atEnd: atEnd.received - atEnd.handled,
      growthPerSecond: Math.round(backlogGrowthPerSecond),
    },
    drainSeconds: round(drainSeconds, 1),
    sustained,
    meanBatchSize: round(count / jobs),
    enqueueRoundTripMs: round(enqueueRoundTripMs),
    // All the CPU of the span, then less what the idle span's rate accounts for.
    cpuMicrosecondsPerDispatch: perDispatchOf(cpu),
    marginalCpuMicrosecondsPerDispatch: perDispatchOf(marginal),
    redisBytesPerDispatch: Math.round(redisBytes / count),
    latencyMs: {
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      max: latencies.at(-1) ?? 0,
    },
  };
}
const steps: Awaited<ReturnType<typeof pacedStep>>[] = [];
for (const rate of rates) steps.push(await pacedStep(rate));
const flatOut = flatOutDispatches > 0 ? await pacedStep(0, flatOutDispatches) : undefined;

// The model beside the run.
const sustainedRate = Math.max(0, ...steps.filter((s) => s.sustained).map((s) => s.sentPerSecond));
const nearest = steps.reduce((best, s) => (s.sentPerSecond === sustainedRate ? s : best), steps[0]!);
// At the rate actually sent, with the round trip the run measured (the batch follows both).
const predicted = predict(shape, nearest.sentPerSecond, nearest.enqueueRoundTripMs);
const coldStart = identifiesAtReady.figures;
const startMemory = totalAnonymous(memoryAtStart);
const clusters = pods * clustersPerPod;
const perGuildMb = joined ? (totalAnonymous(joined.memory) - startMemory) / addedGuilds : undefined;
const gatewayCpu = (c: Cpu) => c.primaries + c.clusters;
// Less what the joining span's seconds cost idle (heartbeats, scrapes), as the streams' marginal figures.
const joinedCpuUs =
  joined &&
  ((gatewayCpu(joined.cpu) - (gatewayCpu(idle.cpu) * joined.seconds) / idle.seconds) * 1e6) / addedGuilds;
const usPerDispatch = nearest.marginalCpuMicrosecondsPerDispatch;
const comparison = [
  // The model's identify spacing after the measured time to the first IDENTIFY.
  compared(
    'time to all shards READY, s (measured to the first IDENTIFY + the spacings)',
    coldStart.where.toFirstIdentifySeconds + predicted.identifySpanSeconds,
    readySeconds,
  ),
  compared('gateway anonymous memory, MB (all pods)', predicted.gatewayAnonymousMb, startMemory),
  compared(
    'cluster process anonymous memory, MB (mean)',
    predicted.clusterAnonymousMb,
    memoryAtStart.clusters.anonymousMb / clusters,
  ),
  ...(perGuildMb === undefined
    ? []
    : [
        compared(
          'gateway anonymous MB per 1,000 guilds',
          predicted.anonymousMbPerThousandGuilds,
          perGuildMb * 1000,
        ),
      ]),
  ...(joinedCpuUs === undefined
    ? []
    : [
        compared(
          'gateway CPU µs per GUILD_CREATE (marginal)',
          predicted.guildCreateMicroseconds,
          joinedCpuUs,
        ),
      ]),
  compared(
    `mean dispatches per job at ${nearest.sentPerSecond}/s sent`,
    predicted.meanBatchSize,
    nearest.meanBatchSize,
  ),
  compared(
    `gateway CPU µs per dispatch at ${nearest.sentPerSecond}/s sent`,
    predicted.gatewayMicrosecondsPerDispatch,
    usPerDispatch.gateway,
  ),
  compared(
    `Redis CPU µs per dispatch at ${nearest.sentPerSecond}/s sent`,
    predicted.redisMicrosecondsPerDispatch,
    usPerDispatch.redis,
  ),
  compared(
    `worker CPU µs per dispatch at ${nearest.sentPerSecond}/s sent`,
    predicted.workerMicrosecondsPerDispatch,
    usPerDispatch.workers,
  ),
];
const readyRatio = round(readySeconds / predicted.floorSeconds, 3);
const flatRatio = joined && round(totalAnonymous(joined.memory) / startMemory, 3);
printFigures(
  {
    machine: {
      cores: cpus().length,
      loadAverageAtStart: round(loadAtStart, 1),
      loadAverageAtEnd: round(loadavg()[0]!, 1),
    },
    shape: {
      ...shape,
      clusters,
      shardsPerCluster: shards / clusters,
      guildsPerShard,
      guildSize,
      workers: workerCount,
    },
    coldStart: {
      readySeconds: round(readySeconds, 1),
      floorSeconds: predicted.floorSeconds,
      ratioToFloor: readyRatio,
      identifies: identifiesAtReady,
      allGuildCreatesSeconds: round(guildsInSeconds, 1),
      cpuSecondsToAllGuilds: Object.fromEntries(Object.entries(startupCpu).map(([k, v]) => [k, round(v, 1)])),
    },
    memoryAtStart: { guilds, ...memoryAtStart },
    ...(joined && {
      guildsJoined: {
        added: addedGuilds,
        seconds: round(joined.seconds, 1),
        memory: { guilds: guilds + addedGuilds, ...joined.memory },
        anonymousRatio: flatRatio,
        gatewayCpuMicrosecondsPerGuildCreate: round((gatewayCpu(joined.cpu) * 1e6) / addedGuilds, 1),
        marginalGatewayCpuMicrosecondsPerGuildCreate: round(joinedCpuUs!, 1),
        simulatorCpuMicrosecondsPerGuildCreate: round((joined.cpu.simulator * 1e6) / addedGuilds, 1),
      },
    }),
    idle: {
      what: 'every shard connected, no stream: CPU cores each tier uses anyway (heartbeats, pollers, the scrapes)',
      seconds: round(idle.seconds, 1),
      cores: Object.fromEntries(Object.entries(idle.cpu).map(([k, v]) => [k, round(v / idle.seconds, 3)])),
      gatewayMillicoresPerShard: round(
        ((idle.cpu.primaries + idle.cpu.clusters) * 1000) / idle.seconds / shards,
        3,
      ),
    },
    redisUsedMb: round((await redisUsedBytes()) / 2 ** 20, 1),
    steps,
    ...(flatOut && { flatOut }),
    // The highest rate the simulator actually sent that the bot kept up with.
    sustainedRatePerSecond: sustainedRate,
    peakRssMb: Object.fromEntries(Object.entries(peakRss).map(([k, v]) => [k, Math.round(v)])),
    comparison,
  },
  [
    atMost(
      `time to all shards READY / ceil(N / C) x ${windowMs / 1000} s, ${shards} shards in ${pods} pods, C = ${maxConcurrency}`,
      readyRatio,
      1.1,
    ),
    ...(flatRatio === undefined
      ? []
      : [
          atMost(
            `gateway anonymous memory at ${guildsPerShard + addedPerShard} guilds per shard / at ${guildsPerShard}`,
            flatRatio,
            1.1,
          ),
        ]),
    atMost('peak resident memory of every process of the run, MB (~6 GiB)', Math.round(peakRss.total), 6_144),
    atLeast(
      `MESSAGE_CREATE rate (sent) sustained without backlog growth, /s (λ = 10 per 1,000 guilds is ${streamGuilds / 100})`,
      sustainedRate,
      streamGuilds / 100,
    ),
  ],
);
await scope.stop();
