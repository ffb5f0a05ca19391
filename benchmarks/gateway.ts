// Benchmark: the Ear (a gateway pod: Kurasuta primary + one cluster running the EarClient over @discordjs/ws, forwarding
// to BullMQ on a real Redis) against a default-cache discord.js Client, receiving the same
// gateway stream from the simulator (a fresh simulator with the same seed for each, so the same
// guilds, ids and payloads): memory after 10,000 guilds' GUILD_CREATE, how fast each got through
// that startup flood, then dispatches/s of a MESSAGE_CREATE stream the Ear forwards. Last, the
// Ear's forwarder alone (no gateway in front) on the same Redis: the most any receiver could
// enqueue through it here. Prints JSON ending with `targets` (docs/benchmarks.md: memory at most
// a tenth of the default client's, rate at least twice its rate), computed from this run's figures.
//   BENCH_GUILDS (10000), BENCH_MEMBERS (0), BENCH_CHANNELS (20), BENCH_ROLES (12),
//   BENCH_DISPATCHES (50000) override the defaults; see docs/benchmarks.md for the payload.
//   BENCH_PROBE=1 signals the measured processes (SIGUSR2) after their RSS is read, for a
//   diagnostic preload (NODE_OPTIONS / EAR_NODE_OPTIONS=--require ...) that records heap figures.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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
import { DEFAULT_NAMESPACE, QUEUES, queuePrefix, type DispatchBatchJob } from '../bot/queues/queue-names.js';
import { messagePayload } from '../discord-simulator/index.js';
import { World } from '../discord-simulator/world.js';
import { guildCreatePayload } from '../discord-simulator/gateway/payloads.js';
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
import { startProcess } from '../testenv/processes.js';

// Whatever ends the run (its end, a failure, Ctrl-C), what it started stops.
const scope = runScope();
const setting = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
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
// The recommended count (one shard per 1,000 guilds), which the default client uses with shards: 'auto'.
const shards = Math.ceil(guilds / 1_000);
const intents = 'Guilds,GuildMessages';

const simulator = () =>
  startSimulatorWithOptions({
    seed: 1,
    guilds,
    guildSize,
    gateway: { maxConcurrency: shards },
  });

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function probe(pids: number[]): Promise<void> {
  if (process.env.BENCH_PROBE !== '1') return;
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  await sleep(1_500);
}

async function stream(controlUrl: string): Promise<void> {
  const res = await fetch(`${controlUrl}/dispatch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      type: 'MESSAGE_CREATE',
      count: dispatches,
      firstChannel: true,
      // The simulator gives each its own id, guild and the guild's first channel.
      data: messagePayload({ id: '0', guildId: '0', channelId: '0', content: 'hello' }),
    }),
  });
  if (!res.ok) throw new Error(`stream failed: ${res.status}`);
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const value = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return value('used_cpu_user') + value('used_cpu_sys');
}

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
const defaultCpuBefore = [cpuSeconds(def.pid!), cpuSeconds(a.child.pid!)];
const defaultStart = performance.now();
const done = next();
await stream(a.info.controlUrl);
await done;
const defaultSeconds = (performance.now() - defaultStart) / 1000;
const defaultCpu = [cpuSeconds(def.pid!), cpuSeconds(a.child.pid!)].map((c, i) => c - defaultCpuBefore[i]!);
def.removeAllListeners('exit');
def.kill('SIGKILL');
a.child.kill('SIGTERM');

// The Ear.
const b = scope.own(await simulator(), (s) => s.child.kill('SIGTERM'));
const redis = scope.own(await startRedis(), (r) => r.close());
const logs = scope.own(makeTempDir('bench-gateway'), (d) => d.remove());
const earEnv = {
  ...process.env,
  SHARDWARDEN_BOT_NAME: 'bench',
  SHARDWARDEN_POD_INDEX: '0',
  SHARDWARDEN_TOTAL_SHARDS: String(shards),
  SHARDWARDEN_SHARDS_PER_POD: String(shards),
  SHARDWARDEN_CLUSTERS_PER_POD: '1',
  SHARDWARDEN_MAX_CONCURRENCY: String(shards),
  SHARDWARDEN_INTENTS: intents,
  // GUILD_CREATE is not forwarded: the startup flood is dropped at the door (and counted).
  SHARDWARDEN_EVENTS: 'MESSAGE_CREATE,INTERACTION_CREATE',
  SHARDWARDEN_HTTP_PORT: '0',
  DISCORD_TOKEN: b.info.token,
  DISCORD_API_URL: b.info.apiUrl,
  REDIS_URL: redis.url,
  SHARDWARDEN_LOG_LEVEL: 'info',
  NODE_OPTIONS: `--import ${floodProbe} ${process.env.EAR_NODE_OPTIONS ?? ''}`,
  ...floodProbeEnv,
  FLOOD_PROBE_SKIP_PRIMARY: '1',
};
const gw = startProcess(
  'gateway',
  process.execPath,
  [join('dist', 'bin', 'shardwarden.js'), 'gateway'],
  join(logs.path, 'gateway.log'),
  { env: earEnv },
);
scope.own(gw, (p) => p.stop());
const queue = new Queue(QUEUES.events, {
  connection: { url: redis.url },
  prefix: queuePrefix({ namespace: DEFAULT_NAMESPACE, name: 'bench' }),
});
const redisInfo = scope.own(new Redis(redis.url), (r) => r.disconnect());
let port = 0;
/**
 * Dispatches of a type the pod counted (`received`, or `forwarded`: in Redis, their batch's
 * addBulk answered), summed over its cluster processes' series.
 */
const dispatchCount = async (counter: 'received' | 'forwarded', type: string) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter(
      (l) => l.startsWith(`shardwarden_gateway_dispatches_${counter}_total{`) && l.includes(`type="${type}"`),
    )
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
};
/** Dispatches in the waiting jobs of a batched events queue (read once, at the end). */
const queuedDispatches = async (q: Queue) =>
  (await q.getJobs(['wait'], 0, -1)).reduce(
    (n, job) => n + (job.data as DispatchBatchJob).dispatches.length,
    0,
  );
await waitUntil(
  'gateway pods ready',
  async () => {
    port = Number(/"port":(\d+)/.exec(readFileSync(gw.logFile, 'utf8'))?.[1] ?? 0);
    return (
      port > 0 &&
      (await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      ))
    );
  },
  { process: gw, timeoutMs: 120_000, intervalMs: 500 },
).catch(async (err) => {
  console.error(readFileSync(gw.logFile, 'utf8').slice(-2000));
  throw err;
});
const earFloodResult = floodOf(childPids(gw.child.pid!)[0]!);
await sleep(2_000);
const earPids = [gw.child.pid!, ...childPids(gw.child.pid!)];
const earMemoryByProcess = earPids.map((pid) => memoryMb(pid));
const sum = (key: 'rss' | 'anonymous') => earMemoryByProcess.reduce((s, m) => s + m[key], 0);
const earRss = sum('rss');
await probe(earPids);
const earCpuPids = [...earPids, b.child.pid!];
const earCpuBefore = [...earCpuPids.map(cpuSeconds), await redisCpuSeconds(redisInfo)];
const earStart = performance.now();
await stream(b.info.controlUrl);
let earReceivedSeconds = 0;
await waitUntil(
  'all dispatches received and enqueued',
  async () => {
    if (!earReceivedSeconds && (await dispatchCount('received', 'MESSAGE_CREATE')) >= dispatches)
      earReceivedSeconds = (performance.now() - earStart) / 1000;
    return earReceivedSeconds > 0 && (await dispatchCount('forwarded', 'MESSAGE_CREATE')) >= dispatches;
  },
  { timeoutMs: 300_000, intervalMs: 50 },
);
const earSeconds = (performance.now() - earStart) / 1000;
const earCpu = [...earCpuPids.map(cpuSeconds), await redisCpuSeconds(redisInfo)].map(
  (c, i) => c - earCpuBefore[i]!,
);
const earQueued = await queuedDispatches(queue);
if (earQueued !== dispatches) throw new Error(`the Ear enqueued ${earQueued} of ${dispatches}`);
await queue.close();
await gw.stop();
b.child.kill('SIGTERM');

// The forwarder alone, in this process, on the same Redis: the same code, options and job
// shape as the Ear's cluster, fed already-parsed MESSAGE_CREATEs with nothing in front of it
// (no socket, no JSON, no discord.js). Its rate bounds what any receiver could enqueue here.
const floorConfig = parseGatewayConfig(earEnv);
const floorPrefix = queuePrefix({ namespace: DEFAULT_NAMESPACE, name: 'bench-floor' });
const floorQueues = {
  interactions: new Queue(QUEUES.interactions, { connection: { url: redis.url }, prefix: floorPrefix }),
  events: new Queue(QUEUES.events, { connection: { url: redis.url }, prefix: floorPrefix }),
};
const forwarder = new DispatchForwarder(
  { interactions: floorQueues.interactions, events: [floorQueues.events] },
  {
    events: floorConfig.events,
    generation: floorConfig.generation,
    batchSize: floorConfig.batchSize,
    batchDelayMs: floorConfig.batchDelayMs,
    bufferLimit: dispatches,
    probeWrite: () => redisInfo.set('bench-floor-probe', '1'),
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

const round2 = (n: number) => Math.round(n * 100) / 100;
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
    },
    ear: {
      perDispatch:
        'parse, count, de-duplication key, batch, BullMQ addBulk (one job per batch of events) into Redis: durable',
      processes: earPids.length,
      rssMbAfterGuildCreate: Math.round(earRss),
      anonymousMb: Math.round(sum('anonymous')),
      byProcess: earMemoryByProcess.map((m) => ({
        rssMb: Math.round(m.rss),
        anonymousMb: Math.round(m.anonymous),
      })),
      dispatchesPerSecondReceived: rate(earReceivedSeconds),
      dispatchesPerSecondEnqueued: rate(earSeconds),
      cpuSecondsDuringStream: {
        primary: round2(earCpu[0]!),
        clusters: round2(earCpu.slice(1, earPids.length).reduce((s, c) => s + c, 0)),
        simulator: round2(earCpu[earPids.length]!),
        redis: round2(earCpu[earPids.length + 1]!),
      },
    },
    forwarderAlone: {
      what: 'the Ear forwarder in one process, fed parsed MESSAGE_CREATEs, same batch options and jobs, same Redis',
      dispatchesPerSecondEnqueued: rate(floorSeconds),
      clientCpuMicrosecondsPerDispatch: round2((floorClientCpu.user + floorClientCpu.system) / dispatches),
      redisCpuMicrosecondsPerDispatch: round2((floorRedisCpu * 1e6) / dispatches),
      ratioVsDefaultClient: Number((defaultSeconds / floorSeconds).toFixed(2)),
    },
    memoryRatio,
    memoryRatioAnonymous: anonymousRatio,
    rateRatioEnqueuedVsDefault: enqueuedRateRatio,
    rateRatioReceivedVsDefault: Number((defaultSeconds / earReceivedSeconds).toFixed(2)),
  },
  [
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
  ],
);
await scope.stop();
