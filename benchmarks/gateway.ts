// Benchmark: the Ear (a gateway pod of one cluster, clustersPerPod: 1, which runs the EarClient
// over @discordjs/ws in the pod's own process, forwarding to BullMQ on a real Redis) against a default-cache discord.js Client, receiving the same
// gateway stream from the simulator (a fresh simulator with the same seed for each, so the same
// guilds, ids and payloads): memory after 10,000 guilds' GUILD_CREATE, how fast each got through
// that startup flood, then dispatches/s of a MESSAGE_CREATE stream the Ear forwards. Then worker
// processes consume what the Ear enqueued (Redis CPU per dispatch end to end), and a stream paced
// at 5,000/s goes through the Ear to them (dispatch → handler latency). Then the Ear's forwarder
// alone (no gateway in front) on the same Redis: the most any receiver could enqueue through it
// here. Then the Ear's memory at 50,000 guilds, and last the end-to-end stream again on a 3-master
// Redis Cluster with the bot's events in partitions. Prints JSON ending with `targets` (one per row
// of docs/benchmarks.md's tables), computed from this run's figures.
//   BENCH_GUILDS (10000), BENCH_MEMBERS (0), BENCH_CHANNELS (20), BENCH_ROLES (12),
//   BENCH_DISPATCHES (50000) override the defaults; see docs/benchmarks.md for the payload.
//   BENCH_WORKERS (2), BENCH_LATENCY_RATE (5000), BENCH_LATENCY_SECONDS (5), BENCH_FLAT_GUILDS
//   (50000; 0 skips the second Ear) shape the end-to-end, latency and memory-growth figures.
//   BENCH_FORKED (1; 0 skips it): the memory of the forked shape too (clustersPerPod: 2, a
//   Kurasuta primary and two cluster processes) at BENCH_GUILDS.
//   BENCH_CLUSTER_PARTITIONS (3; 0 skips it) is the event partition count of the last phase, the
//   same stream on a 3-master Redis Cluster (each master's CPU ÷ the single Redis's); its
//   partitions' slots are first placed one per master in turn (BENCH_CLUSTER_PLACE=0: left
//   where their hash tags fall; BENCH_CLUSTER_REPLICAS=0: masters without replicas, to see what
//   replication costs them).
//   BENCH_BATCH_BODIES=0 writes batches inline (jobs that carry their dispatches), for an A/B.
//   BENCH_PROFILE=0 skips the perf profiles of redis-server (enqueue, consume, each cluster
//   master: endToEnd.redisProfile and redisCluster.masters[].profile).
//   BENCH_PROFILE_NODE=1 also profiles the default client's and the Ear's process over their
//   MESSAGE_CREATE streams (defaultClient.profile, ear.profile). Both then run with V8's perf
//   flags from their start, which change their memory and speed: such a run is a diagnostic,
//   its JSON says so (nodeProfiled) and its targets are not a run of record.
//   BENCH_PROBE=1 signals the measured processes (SIGUSR2) after their RSS is read, for a
//   diagnostic preload (NODE_OPTIONS / EAR_NODE_OPTIONS=--require ...) that records heap figures.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { parseGatewayConfig } from '../bot/gateway/config.js';
import { DispatchForwarder } from '../bot/gateway/forwarding/dispatch-forwarder.js';
import { GatewayMetrics } from '../bot/gateway/metrics.js';
import { createLogger } from '../bot/observability/logger.js';
import {
  DEFAULT_NAMESPACE,
  forwardedQueues,
  BATCH_CONSUMERS,
  batchBodiesFlagKey,
  consumerClientName,
  QUEUES,
  queuePrefix,
  type DispatchBatchJob,
  type DispatchBatchRef,
} from '../bot/queues/queue-names.js';
import { connectRedis } from '../bot/configuration/redis-connection.js';
import { parseRedisTarget } from '../bot/configuration/redis-target.js';
import { ENV, GATEWAY_MALLOC_ENV } from '../bot/runtime-contract.js';
import { messagePayload } from '../discord-simulator/index.js';
import { World } from '../discord-simulator/world.js';
import { guildCreatePayload } from '../discord-simulator/gateway/payloads.js';
import { startSimulatorWithOptions } from './simulator-process.js';
import {
  metricTotal,
  readyPort,
  scrapeMetrics,
  redisCpuSeconds,
  startBenchWorker,
  startShardwarden,
  streamMessages,
  type SimulatorUrls,
} from './shardwarden-processes.js';
import { atLeast, atMost, printFigures, type Target } from './targets.js';
import {
  childPids,
  cpuSeconds,
  makeTempDir,
  memoryMb,
  metricSum,
  runScope,
  startRedis,
  startRedisCluster,
  waitUntil,
} from '../testenv/index.js';
import { LATENCY_CONTENT } from './latency-handler.js';
import { NODE_PERF_FLAGS, perfMapOf, profileNode } from './node-profile.js';
import type { ProfileRecording } from './perf-profile.js';
import { profileRedis } from './redis-profile.js';

// Whatever ends the run (its end, a failure, Ctrl-C), what it started stops.
const scope = runScope();
const setting = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
// Where Redis's CPU goes, phase by phase (perf, about 1 % of a core; BENCH_PROFILE=0 skips it).
const profiling = process.env.BENCH_PROFILE !== '0';
const profileDir = scope.own(makeTempDir('bench-gateway-profile'), (d) => d.remove());
const profile = async (redis: Redis, name: string): Promise<ProfileRecording | undefined> =>
  profiling ? profileRedis(redis, profileDir.path, name) : undefined;
// And the default client's and the Ear's (BENCH_PROFILE_NODE=1: V8's perf flags change what they
// measure, so only on request).
const nodeProfiling = process.env.BENCH_PROFILE_NODE === '1';
const nodePerfFlags = nodeProfiling ? NODE_PERF_FLAGS : [];
/** A process started with `nodePerfFlags`: its symbol map is removed when the run ends, however. */
const ownPerfMap = (pid: number) => {
  if (nodeProfiling) scope.own(pid, (p) => rmSync(perfMapOf(p), { force: true }));
};
const profileProcess = async (pid: number, name: string): Promise<ProfileRecording | undefined> =>
  nodeProfiling ? profileNode(pid, profileDir.path, name) : undefined;
const guilds = setting('BENCH_GUILDS', 10_000);
// Intents Guilds + GuildMessages: without the privileged GuildPresences intent Discord sends
// only the bot's own member (and members in voice channels) in GUILD_CREATE, so 0 generated
// members is the realistic default; BENCH_MEMBERS=50 gives the shape a bot with presences gets.
const guildSize = {
  members: setting('BENCH_MEMBERS', 0),
  channels: setting('BENCH_CHANNELS', 20),
  roles: setting('BENCH_ROLES', 12),
};
const dispatches = setting('BENCH_DISPATCHES', 50_000);
// The end-to-end figures: worker processes consuming the stream, and the latency stream's pace.
const workerCount = setting('BENCH_WORKERS', 2);
const latencyRate = setting('BENCH_LATENCY_RATE', 5_000);
const latencySeconds = setting('BENCH_LATENCY_SECONDS', 5);
// The second stream size for the Ear's memory (0 skips it).
const flatGuilds = setting('BENCH_FLAT_GUILDS', 50_000);
const forkedShape = setting('BENCH_FORKED', 1) > 0;
// The recommended count (one shard per 1,000 guilds), which the default client uses with shards: 'auto'.
const shards = Math.ceil(guilds / 1_000);
const intents = 'Guilds,GuildMessages';

const simulator = (guildCount = guilds) =>
  startSimulatorWithOptions({
    seed: 1,
    guilds: guildCount,
    guildSize,
    gateway: { maxConcurrency: Math.ceil(guildCount / 1_000) },
  });

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function probe(pids: number[]): Promise<void> {
  if (process.env.BENCH_PROBE !== '1') return;
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  await sleep(1_500);
}

/** MESSAGE_CREATEs from the simulator: `dispatches` of them flat out, unless told otherwise. */
const stream = (
  controlUrl: string,
  options: { count?: number; ratePerSecond?: number; stampTimestamp?: boolean; content?: string } = {},
) => streamMessages(controlUrl, { ...options, count: options.count ?? dispatches });

type CommandStats = Map<string, { calls: number; usec: number }>;

/** Redis's per-command counters (INFO commandstats; a script's own commands count too). */
async function commandStats(redis: Redis): Promise<CommandStats> {
  const stats: CommandStats = new Map();
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_(\S+):calls=(\d+),usec=(\d+)/gm))
    stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  return stats;
}

/**
 * Seconds Redis spent in scripts (BullMQ's and the claims: most of the work) between two readings,
 * the commands they run included. Wall-clock time inside Redis: on a loaded machine it counts
 * the time Redis was descheduled mid-script too (then it exceeds the CPU time).
 */
function scriptSeconds(before: CommandStats, after: CommandStats): number {
  let usec = 0;
  for (const [command, a] of after)
    if (command.startsWith('eval')) usec += a.usec - (before.get(command)?.usec ?? 0);
  return usec / 1e6;
}

/** A counter of INFO `section` (0 when absent). */
async function infoCounter(redis: Redis, section: string, field: string): Promise<number> {
  return Number(new RegExp(`${field}:(\\d+)`).exec(await redis.info(section))?.[1] ?? 0);
}
/** Bytes Redis has read from its clients: what the enqueue writes grows it. */
const netInputBytes = (redis: Redis) => infoCounter(redis, 'stats', 'total_net_input_bytes');
/** Bytes a master has written to its replication stream. */
const replicationOffset = (redis: Redis) => infoCounter(redis, 'replication', 'master_repl_offset');

/** Where Redis spent its time between two readings: the costliest commands, per dispatch. */
function commandsPerDispatch(before: CommandStats, after: CommandStats, top = 8) {
  return [...after]
    .map(([command, a]) => {
      const b = before.get(command) ?? { calls: 0, usec: 0 };
      return { command, calls: a.calls - b.calls, usec: a.usec - b.usec };
    })
    .filter((c) => c.calls > 0)
    .sort((x, y) => y.usec - x.usec)
    .slice(0, top)
    .map((c) => ({
      command: c.command,
      callsPerDispatch: Number((c.calls / dispatches).toFixed(3)),
      usecPerDispatch: Number((c.usec / dispatches).toFixed(2)),
    }));
}

// The workers' handler module records the latency stream's figures here.
const latencyDir = scope.own(makeTempDir('bench-gateway-latency'), (d) => d.remove());
function recordedLatencies(): number[] {
  return readdirSync(latencyDir.path).flatMap((f) =>
    readFileSync(join(latencyDir.path, f), 'utf8').split('\n').filter(Boolean).map(Number),
  );
}

/**
 * A worker process (the real entrypoint) of bot `bench`, with only the benchmark's handler module;
 * `extra` changes its environment (another bot, Redis, partition count).
 */
const startWorker = (sim: SimulatorUrls, i: number, extra: NodeJS.ProcessEnv = {}) =>
  startBenchWorker(
    scope,
    {
      name: `worker-${extra.SHARDWARDEN_BOT_NAME ?? 'bench'}-${i}`,
      bot: 'bench',
      logDir: logs.path,
      latencyDir: latencyDir.path,
      redisUrl: redis.url,
      env: extra,
    },
    sim,
  );

/** Memory of a fresh Node process that loads `modules`: the floor any Node process pays. */
async function baselineMb(modules: string[]): Promise<{ rss: number; anonymous: number }> {
  const code = `${modules.map((m) => `require(${JSON.stringify(m)});`).join('')}console.log('loaded');setTimeout(() => {}, 60000)`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
    await sleep(300);
    const m = memoryMb(child.pid!);
    return { rss: Math.round(m.rss), anonymous: Math.round(m.anonymous) };
  } finally {
    child.kill('SIGKILL');
  }
}

// The startup flood is timed inside each measured process by the same preload (flood-probe.ts).
const floodDir = scope.own(makeTempDir('bench-gateway-flood'), (d) => d.remove());
const floodProbe = pathToFileURL(join('dist', 'benchmarks', 'flood-probe.js')).href;
const floodProbeEnv = { FLOOD_PROBE_DIR: floodDir.path, FLOOD_PROBE_COUNT: String(guilds) };
interface Flood {
  guildCreates: number;
  ms: number;
  cpuMs: number;
}
function floodOf(pid: number): Flood {
  const file = join(floodDir.path, `flood-${pid}.json`);
  if (!existsSync(file)) throw new Error(`process ${pid} did not report the GUILD_CREATE flood`);
  return JSON.parse(readFileSync(file, 'utf8')) as Flood;
}

// What one GUILD_CREATE looks like (same generator and sizes as the simulator's).
const sample = new World({ id: '1', username: 'bot', global_name: null, discriminator: '0', avatar: null });
const sampleGuild = guildCreatePayload(sample, sample.addGuild(guildSize), 50);
const guildCreateBytes = JSON.stringify(sampleGuild).length;

// The default client.
const a = scope.own(await simulator(), (s) => s.child.kill('SIGTERM'));
const def = spawn(
  process.execPath,
  [
    ...nodePerfFlags,
    '--import',
    floodProbe,
    join('dist', 'benchmarks', 'default-client.js'),
    a.info.apiUrl,
    a.info.token,
    String(dispatches),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...floodProbeEnv } },
);
scope.own(def, (c) => (c.removeAllListeners('exit'), c.kill('SIGKILL')));
ownPerfMap(def.pid!);
const defExited = new Promise<never>((_, reject) =>
  def.once('exit', (code, signal) => reject(new Error(`default client exited (${code ?? signal})`))),
);
const lines = createInterface({ input: def.stdout! });
const next = () =>
  Promise.race([
    new Promise<Record<string, number>>((resolve) => lines.once('line', (l) => resolve(JSON.parse(l)))),
    defExited,
  ]);
const readyAt = await next();
const defaultMemory = memoryMb(def.pid!);
const defaultRss = defaultMemory.rss;
const defaultFlood = floodOf(def.pid!);
await probe([def.pid!]);
const defaultRecording = await profileProcess(def.pid!, 'default-client-stream');
const defaultCpuBefore = [cpuSeconds(def.pid!), cpuSeconds(a.child.pid!)];
const defaultStart = performance.now();
const done = next();
await stream(a.info.controlUrl);
await done;
const defaultSeconds = (performance.now() - defaultStart) / 1000;
const defaultCpu = [cpuSeconds(def.pid!), cpuSeconds(a.child.pid!)].map((c, i) => c - defaultCpuBefore[i]!);
const defaultProfile = await defaultRecording?.stop();
def.removeAllListeners('exit');
def.kill('SIGKILL');
a.child.kill('SIGTERM');

// The Ear.
const b = scope.own(await simulator(), (s) => s.child.kill('SIGTERM'));
const redis = scope.own(await startRedis(), (r) => r.close());
const logs = scope.own(makeTempDir('bench-gateway'), (d) => d.remove());
const redisInfo = scope.own(new Redis(redis.url), (r) => r.disconnect());

/**
 * A gateway pod's environment: `clusters` clusters (default 1: all of `shardCount` shards in
 * the pod's own process) for all of `shardCount` shards.
 */
const earEnvOf = (
  sim: { info: { token: string; apiUrl: string } },
  shardCount: number,
  bot: string,
  clusters = 1,
) => ({
  ...process.env,
  SHARDWARDEN_BOT_NAME: bot,
  SHARDWARDEN_POD_INDEX: '0',
  SHARDWARDEN_TOTAL_SHARDS: String(shardCount),
  SHARDWARDEN_SHARDS_PER_POD: String(shardCount),
  SHARDWARDEN_CLUSTERS_PER_POD: String(clusters),
  SHARDWARDEN_MAX_CONCURRENCY: String(shardCount),
  SHARDWARDEN_INTENTS: intents,
  // GUILD_CREATE is not forwarded: the startup flood is dropped at the door (and counted).
  SHARDWARDEN_EVENTS: 'MESSAGE_CREATE,INTERACTION_CREATE',
  SHARDWARDEN_HTTP_PORT: '0',
  // Room for a whole stream: the benchmark measures rates, and a dispatch the buffer has no room
  // for is dropped (counted), not held back (docs/gateway.md, "The forwarder").
  SHARDWARDEN_BUFFER_LIMIT: String(Math.max(dispatches, latencyRate * latencySeconds)),
  DISCORD_TOKEN: sim.info.token,
  DISCORD_API_URL: sim.info.apiUrl,
  REDIS_URL: redis.url,
  SHARDWARDEN_LOG_LEVEL: 'info',
  // As the operator renders it into the gateway pod (docs/gateway.md).
  ...GATEWAY_MALLOC_ENV,
  // EAR_MALLOC_MMAP_THRESHOLD: glibc's mmap threshold for the Ear alone (the A/B of docs/gateway.md).
  ...(process.env.EAR_MALLOC_MMAP_THRESHOLD
    ? { MALLOC_MMAP_THRESHOLD_: process.env.EAR_MALLOC_MMAP_THRESHOLD }
    : {}),
  // The semi-space cap: the gateway passes it itself (SHARDWARDEN_MAX_SEMI_SPACE_MB's default).
  NODE_OPTIONS: `--import ${floodProbe} ${process.env.EAR_NODE_OPTIONS ?? ''}`,
  ...floodProbeEnv,
  FLOOD_PROBE_EAR: '1',
  // A forked pod's clusters see only their share of the guilds: no flood figure for them.
  ...(clusters > 1 ? { FLOOD_PROBE_SKIP_PRIMARY: '1', FLOOD_PROBE_COUNT: '0' } : {}),
});
const earEnv = earEnvOf(b, shards, 'bench');
// Only the measured Ear runs with V8's perf flags, as the default client does.
earEnv.NODE_OPTIONS = [earEnv.NODE_OPTIONS, ...nodePerfFlags].join(' ');

/** A gateway pod process tree, READY (every shard up, so the startup flood is through). */
async function startEar(env: NodeJS.ProcessEnv, name: string) {
  const gw = startShardwarden(scope, 'gateway', name, logs.path, env);
  const port = await readyPort(gw);
  // The process running the shards: the pod's own for one cluster, else its first cluster process.
  const shardsPid = () => childPids(gw.child.pid!)[0] ?? gw.child.pid!;
  return { gw, port, shardsPid, pids: () => [gw.child.pid!, ...childPids(gw.child.pid!)] };
}

/**
 * The anonymous memory of a process's main malloc heap (the `[heap]` mapping): what glibc keeps
 * of freed native buffers shows here, apart from V8's heap (other anonymous mappings).
 */
function mallocHeapMb(pid: number): number {
  let inHeap = false;
  let kb = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.trimEnd().endsWith('[heap]');
    else if (inHeap && line.startsWith('Anonymous:')) kb += Number(line.split(/\s+/)[1]);
  }
  return kb / 1024;
}

/** Memory of a process tree after its startup flood, settled (read the same way at each size). */
async function settledMemory(pids: number[]) {
  await sleep(2_000);
  const byProcess = pids.map((pid) => ({ ...memoryMb(pid), mallocHeap: mallocHeapMb(pid) }));
  const total = (key: 'rss' | 'anonymous') => byProcess.reduce((s, m) => s + m[key], 0);
  return { byProcess, rss: total('rss'), anonymous: total('anonymous') };
}

/** Whether batches are written as bodies (BENCH_BATCH_BODIES=0: inline, for an A/B). */
const batchBodies = process.env.BENCH_BATCH_BODIES !== '0';
/**
 * The batch format of `botName`'s gateways for the whole run. Bodies: the flag the workers' look
 * keeps set while they all read bodies (claim-format.ts), set here before the Ear starts, since
 * its stream is enqueued before the workers run. Inline: a connection named as a consumer of the
 * release before (inline batches only) stays open, so the workers' looks keep the flag unset.
 */
const fixBatchFormat = async (
  client: { set(k: string, v: string, ex: 'EX', s: number): Promise<unknown> },
  botName: string,
  connectNamed: (connectionName: string) => Redis,
) => {
  const prefix = queuePrefix({ namespace: DEFAULT_NAMESPACE, name: botName });
  if (batchBodies) await client.set(batchBodiesFlagKey(prefix), '1', 'EX', 3600);
  else {
    const name = consumerClientName(prefix, QUEUES.events, BATCH_CONSUMERS.inlineOnly[0]);
    const named = scope.own(connectNamed(name), (r) => r.disconnect());
    await named.ping();
  }
};
await fixBatchFormat(redisInfo, 'bench', (connectionName) => new Redis(redis.url, { connectionName }));
const ear = await startEar(earEnv, 'gateway');
ownPerfMap(ear.shardsPid());
const gw = ear.gw;
const queue = new Queue(QUEUES.events, {
  connection: { url: redis.url },
  prefix: queuePrefix({ namespace: DEFAULT_NAMESPACE, name: 'bench' }),
});
/** How many dispatches a batch job carries, inline or as a body. */
const batchSize = (data: DispatchBatchJob | DispatchBatchRef) =>
  'body' in data ? data.size : data.dispatches.length;
/** Dispatches in the waiting jobs of a batched events queue (read once, at the end). */
const queuedDispatches = async (q: Queue) =>
  (await q.getJobs(['wait'], 0, -1)).reduce(
    (n, job) => n + batchSize(job.data as DispatchBatchJob | DispatchBatchRef),
    0,
  );
const earFloodResult = floodOf(ear.shardsPid());
const earPids = ear.pids();
const earMemory = await settledMemory(earPids);
const earMemoryByProcess = earMemory.byProcess;
const sum = (key: 'rss' | 'anonymous') => earMemory[key];
const earRss = earMemory.rss;
await probe(earPids);
const earCpuPids = [...earPids, b.child.pid!];
const earCommandsBefore = await commandStats(redisInfo);
const earInputBefore = await netInputBytes(redisInfo);
const earProfile = await profile(redisInfo, 'enqueue');
const earRecording = await profileProcess(ear.shardsPid(), 'ear-stream');
const earCpuBefore = [...earCpuPids.map(cpuSeconds), await redisCpuSeconds(redisInfo)];
const earStart = performance.now();
await stream(b.info.controlUrl);
let earReceivedSeconds = 0;
let earDropped = 0;
await waitUntil(
  'all dispatches received and enqueued',
  async () => {
    // One scrape a poll: the measured process serves it in the middle of its stream.
    const metrics = await scrapeMetrics(ear.port);
    // MESSAGE_CREATEs the pod counted: `received`, `forwarded` (in Redis, their batch's add
    // answered) or `dropped`, summed over its cluster processes' series.
    const counted = (counter: 'received' | 'forwarded' | 'dropped') =>
      metricSum(metrics, `shardwarden_gateway_dispatches_${counter}_total`, 'type="MESSAGE_CREATE"');
    if (!earReceivedSeconds && counted('received') >= dispatches)
      earReceivedSeconds = (performance.now() - earStart) / 1000;
    // A dropped dispatch is never enqueued: the run stops at once, saying so.
    earDropped = counted('dropped');
    return earDropped > 0 || (earReceivedSeconds > 0 && counted('forwarded') >= dispatches);
  },
  { timeoutMs: 300_000, intervalMs: 50 },
);
if (earDropped > 0)
  throw new Error(`the Ear dropped ${earDropped} MESSAGE_CREATEs (its dispatches_dropped_total)`);
const earSeconds = (performance.now() - earStart) / 1000;
const earCpu = [...earCpuPids.map(cpuSeconds), await redisCpuSeconds(redisInfo)].map(
  (c, i) => c - earCpuBefore[i]!,
);
const earCommandsAfter = await commandStats(redisInfo);
const earInputBytes = (await netInputBytes(redisInfo)) - earInputBefore;
// Both stopped at once: each stop() reads its report, which takes seconds.
const [enqueueProfile, earStreamProfile] = await Promise.all([earProfile?.stop(), earRecording?.stop()]);
const earCommands = commandsPerDispatch(earCommandsBefore, earCommandsAfter);
const earQueued = await queuedDispatches(queue);
if (earQueued !== dispatches) throw new Error(`the Ear enqueued ${earQueued} of ${dispatches}`);
/**
 * Stops the run unless the Ear allows the format asked for (its gauge, read now): batches of
 * BATCH_BODY_MIN_DISPATCHES or more are written in it, smaller ones inline either way.
 */
const checkBatchFormat = async (phase: string) => {
  const gauge = await metricTotal(ear.port, 'shardwarden_gateway_batch_bodies');
  if (gauge !== (batchBodies ? 1 : 0))
    throw new Error(`the Ear's batch_bodies gauge read ${gauge} after ${phase}, not ${batchBodies ? 1 : 0}`);
};
await checkBatchFormat('its stream');

// End to end: worker processes (the worker entrypoint, a handler module that does nothing with
// these messages) claim, run and complete what the Ear enqueued. The queue is paused while they
// start, so the Redis CPU read over the drain is the consumers' work on these batches (plus
// whatever the idle gateway and workers ask of Redis meanwhile, which a real bot pays too).
await queue.pause();
const workers = await Promise.all(Array.from({ length: workerCount }, (_, i) => startWorker(b, i)));
/** A counter summed over the workers' /metrics. */
const workersTotal = (name: string, ...labels: string[]) =>
  Promise.all(workers.map((w) => metricTotal(w.port, name, ...labels))).then((counts) =>
    counts.reduce((s, n) => s + n, 0),
  );
const handled = (outcome: string) =>
  workersTotal('shardwarden_worker_dispatches_total', `type="MESSAGE_CREATE"`, `outcome="${outcome}"`);
const batchesCompleted = () =>
  workersTotal('shardwarden_worker_jobs_total', `queue="${QUEUES.events}"`, `outcome="completed"`);
/**
 * Event jobs not finished in Redis. A completed one is removed (`removeOnComplete`) by BullMQ's
 * finishing script, which runs after the worker's counters were updated: none left means every
 * job's completion is in Redis.
 */
const unfinishedJobs = async () =>
  Object.values(await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized')).reduce(
    (s, n) => s + n,
    0,
  );
const consumeJobs = await unfinishedJobs();
const consumeCommandsBefore = await commandStats(redisInfo);
const consumeCpuBefore = await redisCpuSeconds(redisInfo);
const consumeProfiling = await profile(redisInfo, 'consume');
const workersCpu = () => workers.reduce((sum, w) => sum + cpuSeconds(w.proc.child.pid!), 0);
const workersCpuBefore = workersCpu();
const consumeStart = performance.now();
await queue.resume();
await waitUntil(
  'every enqueued dispatch handled by the workers and its job completed in Redis',
  async () => (await handled('completed')) >= dispatches && (await unfinishedJobs()) === 0,
  { timeoutMs: 300_000, intervalMs: 100 },
);
const consumeSeconds = (performance.now() - consumeStart) / 1000;
const consumeRedisCpu = (await redisCpuSeconds(redisInfo)) - consumeCpuBefore;
const consumeWorkersCpu = workersCpu() - workersCpuBefore;
const consumeCommandsAfter = await commandStats(redisInfo);
const consumeCommands = commandsPerDispatch(consumeCommandsBefore, consumeCommandsAfter);
// After the phase's reads: reading a profile takes seconds of CPU.
const consumeProfile = await consumeProfiling?.stop();
// The single Redis's script time over the stream, beside each cluster master's.
const singleScriptSeconds =
  scriptSeconds(earCommandsBefore, earCommandsAfter) +
  scriptSeconds(consumeCommandsBefore, consumeCommandsAfter);
const notCompleted = (await handled('failed')) + (await handled('skipped'));
if (notCompleted > 0) throw new Error(`the workers failed or skipped ${notCompleted} dispatches`);

// Latency: the simulator paces MESSAGE_CREATEs through the same Ear to the same workers, each
// stamped when sent; the handler records when it got it.
const latencyCount = latencyRate * latencySeconds;
const pacedBatchesBefore = await batchesCompleted();
const pacedCpuBefore = await redisCpuSeconds(redisInfo);
await stream(b.info.controlUrl, {
  count: latencyCount,
  ratePerSecond: latencyRate,
  stampTimestamp: true,
  content: LATENCY_CONTENT,
});
let latencies: number[] = [];
await waitUntil(
  'every paced dispatch handled',
  async () => (latencies = recordedLatencies()).length >= latencyCount,
  { timeoutMs: 120_000, intervalMs: 200 },
);
await waitUntil('every paced batch completed in Redis', async () => (await unfinishedJobs()) === 0, {
  timeoutMs: 60_000,
  intervalMs: 100,
});
// Redis CPU per dispatch at the paced rate (enqueue and consumption together, partial batches,
// idle commands over the whole stream included), and the batches' mean size.
const pacedRedisCpu = (await redisCpuSeconds(redisInfo)) - pacedCpuBefore;
await checkBatchFormat('the paced stream');
const pacedBatches = (await batchesCompleted()) - pacedBatchesBefore;
latencies.sort((x, y) => x - y);
const percentile = (q: number) => latencies[Math.max(0, Math.ceil(q * latencies.length) - 1)]!;

await queue.close();
await Promise.all(workers.map((w) => w.proc.stop()));
await gw.stop();
b.child.kill('SIGTERM');

// The forwarder alone, in this process, on the same Redis: the same code, options and job
// shape as the Ear's cluster, fed already-parsed MESSAGE_CREATEs with nothing in front of it
// (no socket, no JSON, no discord.js). Its rate bounds what any receiver could enqueue here.
const floorConfig = parseGatewayConfig(earEnv);
const floorPrefix = queuePrefix({ namespace: DEFAULT_NAMESPACE, name: 'bench-floor' });
// One connection for the queues and the batch bodies, as a cluster process has.
const floorRedis = scope.own(new Redis(redis.url, { maxRetriesPerRequest: null }), (r) => r.disconnect());
const floorQueues = {
  interactions: new Queue(QUEUES.interactions, { connection: floorRedis, prefix: floorPrefix }),
  events: new Queue(QUEUES.events, { connection: floorRedis, prefix: floorPrefix }),
};
const forwarder = new DispatchForwarder(
  { interactions: floorQueues.interactions, events: [floorQueues.events] },
  {
    events: floorConfig.events,
    generation: floorConfig.generation,
    batchSize: floorConfig.batchSize,
    batchDelayMs: floorConfig.batchDelayMs,
    batchesInFlight: floorConfig.batchesInFlight,
    bufferLimit: dispatches,
    probeWrite: () => redisInfo.set('bench-floor-probe', '1'),
    // As a gateway writes them while its bot's workers say every consumer reads them.
    batchBodies: { redis: floorRedis, enabled: () => batchBodies },
  },
  new GatewayMetrics(new Registry()),
  createLogger('bench-floor', 'warn'),
);
const floorPayloads = Array.from({ length: dispatches }, (_, i) =>
  messagePayload({
    id: String(900_000_000_000_000_000n + BigInt(i)),
    guildId: '1',
    channelId: '2',
    content: 'hello',
  }),
);
await floorQueues.events.waitUntilReady();
const floorCpuBefore = [process.cpuUsage(), await redisCpuSeconds(redisInfo)] as const;
const floorStart = performance.now();
for (let i = 0; i < floorPayloads.length; i++) forwarder.accept('MESSAGE_CREATE', floorPayloads[i], 0, i + 1);
if (!(await forwarder.drain(300_000))) throw new Error('the forwarder did not drain');
const floorSeconds = (performance.now() - floorStart) / 1000;
const floorClientCpu = process.cpuUsage(floorCpuBefore[0]);
const floorRedisCpu = (await redisCpuSeconds(redisInfo)) - floorCpuBefore[1];
const floorQueued = await queuedDispatches(floorQueues.events);
if (floorQueued !== dispatches)
  throw new Error(`the forwarder alone enqueued ${floorQueued} of ${dispatches}`);
await Promise.all(Object.values(floorQueues).map((q) => q.close()));

// The Ear's memory at a second stream size: `flatGuilds` guilds (one shard per 1,000, still one
// cluster), read as at 10,000, for a bot of its own on the same Redis.
let flat: Awaited<ReturnType<typeof settledMemory>> | undefined;
let flatFlood: Flood | undefined;
if (flatGuilds > 0) {
  const c = scope.own(await simulator(flatGuilds), (s) => s.child.kill('SIGTERM'));
  const big = await startEar(
    { ...earEnvOf(c, Math.ceil(flatGuilds / 1_000), 'bench-flat'), FLOOD_PROBE_COUNT: String(flatGuilds) },
    'gateway-flat',
  );
  // Ready can come without every guild (a shard waits 15 s at most for its GUILD_CREATEs): the
  // memory is read only once all of them arrived (the flood probe reports only then).
  flatFlood = floodOf(big.shardsPid());
  flat = await settledMemory(big.pids());
  await big.gw.stop();
  c.child.kill('SIGTERM');
}

// The forked shape (clustersPerPod: 2: a Kurasuta primary and two cluster processes), as a pod
// of several clusters still runs: its memory after the same GUILD_CREATEs, read the same way.
let forked: Awaited<ReturnType<typeof settledMemory>> | undefined;
if (forkedShape) {
  const d = scope.own(await simulator(), (s) => s.child.kill('SIGTERM'));
  const two = await startEar(earEnvOf(d, shards, 'bench-forked', 2), 'gateway-forked');
  forked = await settledMemory(two.pids());
  await two.gw.stop();
  d.child.kill('SIGTERM');
}

const round2 = (n: number) => Math.round(n * 100) / 100;

// One bot's stream on a 3-master Redis Cluster (testenv's, a replica per master): the same
// MESSAGE_CREATEs (a fresh simulator of the same seed) forwarded by an Ear of `clusterPartitions`
// event partitions, then drained by as many workers, over the same two phases as on the single
// Redis above (the enqueue, then the consumption of the paused-then-resumed queues). Each
// master's CPU (INFO cpu) over them, divided by the single Redis's for the same stream.
async function clusterRun(partitions: number) {
  const cluster = scope.own(await startRedisCluster({ replicas: clusterReplicas }), (c) => c.close());
  const masters: { port: number; redis: Redis }[] = [];
  for (const node of cluster.nodes) {
    const r = scope.own(new Redis({ host: '127.0.0.1', port: node.port, password: cluster.password }), (c) =>
      c.disconnect(),
    );
    if (/role:master/.test(await r.info('replication'))) masters.push({ port: node.port, redis: r });
    else r.disconnect();
  }
  const bot = { namespace: DEFAULT_NAMESPACE, name: 'bench-cluster' };
  const env = { REDIS_URL: cluster.url, [ENV.eventPartitions]: String(partitions) };
  const client = scope.own(
    connectRedis(parseRedisTarget(cluster.url, 'bench'), { maxRetriesPerRequest: null }),
    (c) => c.disconnect(),
  );
  const partitionKeys = forwardedQueues(bot, partitions)
    .filter((q) => q.queue === QUEUES.events)
    .map((q) => `${q.prefix}:x`);
  const placement = () => Promise.all(partitionKeys.map(async (key) => (await cluster.masterOf(key)).port));
  // Where the hash tags' slots fall by themselves, then (unless told not to) partition p's slot
  // moved to master p mod 3, as docs/install.md tells an operator to place them.
  const hashedPlacement = await placement();
  if (placeSlots)
    for (const [p, key] of partitionKeys.entries())
      await cluster.moveSlot(
        key,
        cluster.nodes.find((n) => n.port === masters[p % masters.length]!.port)!,
      );
  const masterOfPartition = await placement();
  // After the placement: a BullMQ Queue writes its meta key once created.
  const queues = forwardedQueues(bot, partitions)
    .filter((q) => q.queue === QUEUES.events)
    .map((q) => new Queue(q.queue, { connection: client, prefix: q.prefix }));
  const sim = scope.own(await simulator(), (x) => x.child.kill('SIGTERM'));
  await fixBatchFormat(
    client,
    bot.name,
    (connectionName) =>
      new Redis({ host: '127.0.0.1', port: masters[0]!.port, password: cluster.password, connectionName }),
  );
  const cEar = await startEar({ ...earEnvOf(sim, shards, bot.name), ...env }, 'gateway-cluster');
  /** Per master: CPU seconds, command stats, replication offset. */
  const mastersCpu = () =>
    Promise.all(
      masters.map(async (m) => ({
        cpu: await redisCpuSeconds(m.redis),
        commands: await commandStats(m.redis),
        replicated: await replicationOffset(m.redis),
      })),
    );

  const enqueueBefore = await mastersCpu();
  const masterProfiles = await Promise.all(masters.map((m, i) => profile(m.redis, `master-${i}`)));
  const start = performance.now();
  await stream(sim.info.controlUrl);
  await waitUntil(
    'all dispatches enqueued on the cluster',
    async () =>
      (await metricTotal(
        cEar.port,
        'shardwarden_gateway_dispatches_forwarded_total',
        'type="MESSAGE_CREATE"',
      )) >= dispatches,
    { timeoutMs: 300_000, intervalMs: 50 },
  );
  const enqueueSeconds = (performance.now() - start) / 1000;
  const enqueueAfter = await mastersCpu();
  const byPartition = await Promise.all(queues.map((q) => queuedDispatches(q)));
  const jobs = (await Promise.all(queues.map((q) => q.getWaitingCount()))).reduce((x, y) => x + y, 0);
  const queued = byPartition.reduce((x, y) => x + y, 0);
  if (queued !== dispatches) throw new Error(`the Ear enqueued ${queued} of ${dispatches} on the cluster`);

  await Promise.all(queues.map((q) => q.pause()));
  const cWorkers = await Promise.all(
    Array.from({ length: workerCount }, (_, i) =>
      startWorker(sim, i, { ...env, SHARDWARDEN_BOT_NAME: bot.name }),
    ),
  );
  const completed = () =>
    Promise.all(
      cWorkers.map((w) =>
        metricTotal(
          w.port,
          'shardwarden_worker_dispatches_total',
          'type="MESSAGE_CREATE"',
          'outcome="completed"',
        ),
      ),
    ).then((n) => n.reduce((x, y) => x + y, 0));
  const unfinished = async () => {
    const counts = await Promise.all(
      queues.map((q) => q.getJobCounts('wait', 'active', 'delayed', 'prioritized')),
    );
    return counts.flatMap((c) => Object.values(c)).reduce((x, y) => x + y, 0);
  };
  const consumeBefore = await mastersCpu();
  const consumeStart = performance.now();
  await Promise.all(queues.map((q) => q.resume()));
  await waitUntil(
    'every dispatch handled on the cluster and its job completed',
    async () => (await completed()) >= dispatches && (await unfinished()) === 0,
    { timeoutMs: 300_000, intervalMs: 100 },
  );
  const consumeSeconds = (performance.now() - consumeStart) / 1000;
  const consumeAfter = await mastersCpu();
  // The same masters idle (the Ear and the workers connected, nothing to do): the part of a
  // phase's CPU that grows with its length (polling, the cluster bus, cron), which a loaded
  // machine's long phases inflate, and three masters pay three times.
  const idleSeconds = 5;
  await sleep(idleSeconds * 1000);
  const idleAfter = await mastersCpu();
  // Enqueue and consumption together (and the workers' start between them), read after the idle
  // figure: reading a profile takes seconds of CPU.
  const mastersProfile = await Promise.all(masterProfiles.map((p) => p?.stop()));
  if ((await completed()) !== dispatches)
    throw new Error(`the workers completed ${await completed()} of ${dispatches} on the cluster`);

  await Promise.all(queues.map((q) => q.close()));
  await Promise.all(cWorkers.map((w) => w.proc.stop()));
  await cEar.gw.stop();
  sim.child.kill('SIGTERM');
  const partitionsOf = (ports: number[], port: number) => ports.flatMap((x, p) => (x === port ? [p] : []));
  const figures = masters.map((m, i) => ({
    port: m.port,
    partitions: partitionsOf(masterOfPartition, m.port),
    redisCpuSeconds: {
      enqueue: enqueueAfter[i]!.cpu - enqueueBefore[i]!.cpu,
      consume: consumeAfter[i]!.cpu - consumeBefore[i]!.cpu,
    },
    scriptSeconds:
      scriptSeconds(enqueueBefore[i]!.commands, enqueueAfter[i]!.commands) +
      scriptSeconds(consumeBefore[i]!.commands, consumeAfter[i]!.commands),
    idleCpuPerSecond: (idleAfter[i]!.cpu - consumeAfter[i]!.cpu) / idleSeconds,
    profile: mastersProfile[i],
    replicatedMb:
      (enqueueAfter[i]!.replicated -
        enqueueBefore[i]!.replicated +
        consumeAfter[i]!.replicated -
        consumeBefore[i]!.replicated) /
      1e6,
  }));
  for (const m of masters) m.redis.disconnect();
  client.disconnect();
  await cluster.close();
  return {
    partitions,
    slotsPlaced: placeSlots,
    replicas: clusterReplicas,
    partitionsByMasterAsHashed: masters.map((m) => partitionsOf(hashedPlacement, m.port)),
    dispatchesByPartition: byPartition,
    meanBatchSize: dispatches / jobs,
    dispatchesPerSecondEnqueued: Math.round(dispatches / enqueueSeconds),
    dispatchesPerSecondConsumed: Math.round(dispatches / consumeSeconds),
    phaseSeconds: { enqueue: round2(enqueueSeconds), consume: round2(consumeSeconds) },
    masters: figures,
  };
}
const clusterPartitions = setting('BENCH_CLUSTER_PARTITIONS', 3);
const placeSlots = process.env.BENCH_CLUSTER_PLACE !== '0';
const clusterReplicas = process.env.BENCH_CLUSTER_REPLICAS !== '0';
const onCluster = clusterPartitions > 0 ? await clusterRun(clusterPartitions) : undefined;

const floodFigures = (f: Flood) => ({
  guildCreates: f.guildCreates,
  ms: Math.round(f.ms),
  perSecond: Math.round((f.guildCreates * 1000) / f.ms),
  cpuMicrosecondsPerGuildCreate: Math.round((f.cpuMs * 1000) / f.guildCreates),
});
const rate = (seconds: number) => Math.round(dispatches / seconds);
const memoryRatio = Number((earRss / defaultRss).toFixed(3));
const anonymousRatio = Number((sum('anonymous') / defaultMemory.anonymous).toFixed(3));
const floodRateRatio = Number((defaultFlood.ms / earFloodResult.ms).toFixed(2));
const enqueuedRateRatio = Number((defaultSeconds / earSeconds).toFixed(2));
const earRedisCpu = earCpu[earPids.length + 1]!;
const endToEndRedisMicroseconds = round2(((earRedisCpu + consumeRedisCpu) * 1e6) / dispatches);
const latencyP99 = percentile(0.99);
// The single Redis's CPU for the stream: its enqueue and its consumption, as the cluster's masters are read.
const singleRedisCpu = earRedisCpu + consumeRedisCpu;
const masterRatio = (m: { redisCpuSeconds: { enqueue: number; consume: number } }) =>
  Number(((m.redisCpuSeconds.enqueue + m.redisCpuSeconds.consume) / singleRedisCpu).toFixed(3));
const clusterRatio = onCluster && Math.max(...onCluster.masters.map(masterRatio));
// Issue 16's row is read on a cluster as production runs one (docs/benchmarks.md item 8): slots
// placed one partition per master, a replica per master. Any other run is a diagnostic, left out
// of `targets` so that a script reading them cannot take it for the row.
const clusterConditions = [!placeSlots && 'slots as hashed', !clusterReplicas && 'no replicas'].filter(
  (c): c is string => typeof c === 'string',
);
const clusterRow =
  clusterRatio !== undefined && clusterConditions.length === 0
    ? [
        atMost(
          `Redis CPU of the largest of 3 masters (${clusterPartitions} event partitions, slots placed one per master, a replica per master) / one Redis's, same stream enqueued and consumed`,
          clusterRatio,
          0.4,
        ),
      ]
    : [];
/**
 * Rows read from the default client's and the Ear's processes: left out of `targets` when they ran
 * with V8's perf flags (BENCH_PROFILE_NODE=1), which change their memory and speed.
 */
const ofUnflaggedProcesses = (rows: Target[]) => (nodeProfiling ? [] : rows);
const flatRatio = (key: 'rss' | 'anonymous') => flat && Number((flat[key] / earMemory[key]).toFixed(3));
printFigures(
  {
    stream: {
      guilds,
      shards,
      intents,
      guildCreate: {
        bytes: guildCreateBytes,
        members: sampleGuild.members.length,
        channels: sampleGuild.channels.length,
        roles: sampleGuild.roles.length,
        emojis: 0,
        stickers: 0,
      },
      messageCreates: dispatches,
    },
    startupFlood: {
      what: `${guilds} GUILD_CREATEs after READY; the default client builds and caches each guild, the Ear drops them at the door (not a configured type)`,
      defaultClient: floodFigures(defaultFlood),
      ear: floodFigures(earFloodResult),
      rateRatioEarVsDefault: floodRateRatio,
      cpuRatioDefaultVsEar: Number((defaultFlood.cpuMs / earFloodResult.cpuMs).toFixed(2)),
    },
    nodeBaselineMb: {
      bare: await baselineMb([]),
      withDiscordJs: await baselineMb(['discord.js']),
    },
    defaultClient: {
      perDispatch: 'parse, build discord.js objects, update caches, emit messageCreate (empty listener)',
      guildsCached: readyAt.guilds,
      rssMbAfterGuildCreate: Math.round(defaultRss),
      anonymousMb: Math.round(defaultMemory.anonymous),
      dispatchesPerSecond: rate(defaultSeconds),
      cpuSecondsDuringStream: { client: round2(defaultCpu[0]!), simulator: round2(defaultCpu[1]!) },
      // Where its CPU went over the stream (perf samples, grouped: benchmarks/node-profile.ts).
      ...(nodeProfiling && { profile: defaultProfile }),
    },
    ear: {
      shape: 'clustersPerPod: 1: the cluster runs in the pod process (no Kurasuta primary, no fork)',
      perDispatch: `parse, count, de-duplication key, batch, BullMQ add (one job per batch of events, up to ${floorConfig.batchesInFlight} batches in flight) into Redis: durable`,
      processes: earPids.length,
      rssMbAfterGuildCreate: Math.round(earRss),
      anonymousMb: Math.round(sum('anonymous')),
      byProcess: earMemoryByProcess.map((m) => ({
        rssMb: Math.round(m.rss),
        anonymousMb: Math.round(m.anonymous),
        mallocHeapMb: Math.round(m.mallocHeap),
      })),
      dispatchesPerSecondReceived: rate(earReceivedSeconds),
      dispatchesPerSecondEnqueued: rate(earSeconds),
      cpuSecondsDuringStream: {
        pod: round2(earCpu[0]!),
        clusterProcesses: round2(earCpu.slice(1, earPids.length).reduce((s, c) => s + c, 0)),
        simulator: round2(earCpu[earPids.length]!),
        redis: round2(earCpu[earPids.length + 1]!),
      },
      // Its process running the shards, over the same stream as the default client's profile.
      ...(nodeProfiling && { profile: earStreamProfile }),
    },
    forwarderAlone: {
      what: 'the Ear forwarder in one process, fed parsed MESSAGE_CREATEs, same batch options and jobs, same Redis',
      dispatchesPerSecondEnqueued: rate(floorSeconds),
      clientCpuMicrosecondsPerDispatch: round2((floorClientCpu.user + floorClientCpu.system) / dispatches),
      redisCpuMicrosecondsPerDispatch: round2((floorRedisCpu * 1e6) / dispatches),
      ratioVsDefaultClient: Number((defaultSeconds / floorSeconds).toFixed(2)),
    },
    batchBodies,
    ...(nodeProfiling && {
      nodeProfiled:
        "BENCH_PROFILE_NODE=1: the default client and the Ear ran with V8's perf flags; their memory, rate and latency rows are left out of targets",
    }),
    endToEnd: {
      what: `${workerCount} worker processes (the worker entrypoint, a handler that does nothing with these messages) claim, run and complete the ${dispatches} dispatches the Ear enqueued; Redis CPU of the enqueue (the Ear's stream) and of the consumption, per dispatch`,
      workers: workerCount,
      meanBatchSize: round2(dispatches / consumeJobs),
      dispatchesPerSecondConsumed: rate(consumeSeconds),
      redisCpuSeconds: { enqueue: round2(earRedisCpu), consume: round2(consumeRedisCpu) },
      // What the batch format moves: bytes Redis read from the Ear per dispatch (BENCH_BATCH_BODIES).
      enqueueBytesPerDispatch: Math.round(earInputBytes / dispatches),
      workersCpuMicrosecondsPerDispatch: round2((consumeWorkersCpu * 1e6) / dispatches),
      redisCpuMicrosecondsPerDispatch: endToEndRedisMicroseconds,
      // Where it goes (INFO commandstats): a script's time includes the commands it runs.
      redisCommands: { enqueue: earCommands, consume: consumeCommands },
      // And inside Redis (perf samples of redis-server, grouped: benchmarks/redis-profile.ts).
      ...(profiling && { redisProfile: { enqueue: enqueueProfile, consume: consumeProfile } }),
    },
    latency: {
      what: `${latencyCount} MESSAGE_CREATEs paced by the simulator at ${latencyRate}/s through the Ear to the workers: from the simulator sending each to the handler getting it`,
      ratePerSecond: latencyRate,
      dispatches: latencies.length,
      p50Ms: percentile(0.5),
      p99Ms: latencyP99,
      maxMs: latencies[latencies.length - 1],
      meanBatchSize: round2(latencyCount / pacedBatches),
      redisCpuMicrosecondsPerDispatch: round2((pacedRedisCpu * 1e6) / latencyCount),
    },
    ...(forked && {
      earForked: {
        what: `the forked shape (clustersPerPod: 2: Kurasuta primary + 2 cluster processes) after the GUILD_CREATEs of ${guilds} guilds`,
        rssMb: Math.round(forked.rss),
        anonymousMb: Math.round(forked.anonymous),
        byProcess: forked.byProcess.map((m) => ({
          rssMb: Math.round(m.rss),
          anonymousMb: Math.round(m.anonymous),
          mallocHeapMb: Math.round(m.mallocHeap),
        })),
        memoryRatio: Number((forked.rss / defaultRss).toFixed(3)),
        memoryRatioAnonymous: Number((forked.anonymous / defaultMemory.anonymous).toFixed(3)),
      },
    }),
    ...(onCluster && {
      redisCluster: {
        what: `the Ear's ${dispatches} MESSAGE_CREATEs enqueued and consumed by ${workerCount} workers as above, on a 3-master Redis Cluster (${clusterReplicas ? 'a replica each' : 'no replicas'}) with the bot at ${onCluster.partitions} event partitions; each master's CPU over the two phases ÷ the single Redis's for the same stream (${round2(singleRedisCpu)} s)`,
        ...onCluster,
        masters: onCluster.masters.map((m) => ({
          ...m,
          redisCpuSeconds: {
            enqueue: round2(m.redisCpuSeconds.enqueue),
            consume: round2(m.redisCpuSeconds.consume),
          },
          scriptSeconds: round2(m.scriptSeconds),
          idleCpuPerSecond: Number(m.idleCpuPerSecond.toFixed(4)),
          replicatedMb: round2(m.replicatedMb),
          ratioVsSingleRedis: masterRatio(m),
        })),
        meanBatchSize: round2(onCluster.meanBatchSize),
        largestMasterRatio: clusterRatio,
        issueRow:
          clusterConditions.length === 0
            ? 'yes (in targets)'
            : `no, left out of targets: ${clusterConditions.join(', ')}`,
        // Where the masters' sum goes beyond one Redis's: scripts (the work, split) or the rest.
        singleRedis: { redisCpuSeconds: round2(singleRedisCpu), scriptSeconds: round2(singleScriptSeconds) },
      },
    }),
    ...(flat && {
      earMemoryFlat: {
        what: `the Ear after the GUILD_CREATEs of ${flatGuilds} guilds (${Math.ceil(flatGuilds / 1_000)} shards, one cluster in the pod process) against ${guilds}`,
        guilds: [guilds, flatGuilds],
        rssMb: [Math.round(earRss), Math.round(flat.rss)],
        anonymousMb: [Math.round(earMemory.anonymous), Math.round(flat.anonymous)],
        byProcess: flat.byProcess.map((m) => ({
          rssMb: Math.round(m.rss),
          anonymousMb: Math.round(m.anonymous),
          mallocHeapMb: Math.round(m.mallocHeap),
        })),
        startupFlood: flatFlood && floodFigures(flatFlood),
        ratioRss: flatRatio('rss'),
        ratioAnonymous: flatRatio('anonymous'),
      },
    }),
    memoryRatio,
    memoryRatioAnonymous: anonymousRatio,
    rateRatioEnqueuedVsDefault: enqueuedRateRatio,
    rateRatioReceivedVsDefault: Number((defaultSeconds / earReceivedSeconds).toFixed(2)),
  },
  [
    ...ofUnflaggedProcesses([
      atMost('memory ratio Ear / default client, RSS after the GUILD_CREATEs (issue 5)', memoryRatio, 0.1),
      // Issue 16's memory rows (the lean Ear): anonymous memory and RSS.
      atMost(
        'memory ratio Ear / default client, anonymous memory after the GUILD_CREATEs',
        anonymousRatio,
        0.1,
      ),
      atMost('memory ratio Ear / default client, RSS (issue 16)', memoryRatio, 0.25),
      atLeast('rate ratio Ear / default client, startup flood (GUILD_CREATE)', floodRateRatio, 2),
      atLeast('rate ratio Ear / default client, MESSAGE_CREATE enqueued', enqueuedRateRatio, 2),
    ]),
    atMost(
      'Redis CPU µs per forwarded dispatch, enqueue + claim + consume + complete',
      endToEndRedisMicroseconds,
      3,
    ),
    ...ofUnflaggedProcesses([
      atMost(`dispatch → worker handler latency at ${latencyRate}/s, p99 ms`, latencyP99, 50),
    ]),
    ...clusterRow,
    // Issue 16's row is the Ear's memory: judged by both measures, as its other memory rows.
    ...ofUnflaggedProcesses(
      flat
        ? [
            atMost(`Ear memory (RSS) at ${flatGuilds} guilds / at ${guilds}`, flatRatio('rss')!, 1.1),
            atMost(
              `Ear anonymous memory at ${flatGuilds} guilds / at ${guilds}`,
              flatRatio('anonymous')!,
              1.1,
            ),
          ]
        : [],
    ),
  ],
);
await scope.stop();
