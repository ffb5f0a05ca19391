// Benchmark: the Ear (a gateway pod: Kurasuta primary + one cluster, lean discord.js, forwarding
// to BullMQ on a real Redis) against a default-cache discord.js Client, receiving the same
// gateway stream from the simulator (a fresh simulator with the same seed for each, so the same
// guilds, ids and payloads): RSS after 10,000 guilds' GUILD_CREATE, then dispatches/s.
//   BENCH_GUILDS (10000), BENCH_MEMBERS (0), BENCH_CHANNELS (20), BENCH_ROLES (12),
//   BENCH_DISPATCHES (50000) override the defaults; see docs/benchmarks.md for the payload.
//   BENCH_PROBE=1 signals the measured processes (SIGUSR2) after their RSS is read, for a
//   diagnostic preload (NODE_OPTIONS / EAR_NODE_OPTIONS=--require ...) that records heap figures.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { queuePrefix } from '../bot/queues/queue-names.js';
import { messagePayload } from '../discord-simulator/index.js';
import { World } from '../discord-simulator/world.js';
import { guildCreatePayload } from '../discord-simulator/gateway/payloads.js';
import { startSimulatorWithOptions } from './simulator-process.js';
import { childPids, makeTempDir, rssMb, startRedis, waitUntil } from '../testenv/index.js';
import { startProcess } from '../testenv/processes.js';

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

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const value = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return value('used_cpu_user') + value('used_cpu_sys');
}

/** RSS of a fresh Node process that loads `modules`: the floor any Node process pays. */
function baselineRssMb(modules: string[]): number {
  const code = `${modules.map((m) => `require(${JSON.stringify(m)});`).join('')}setTimeout(() => console.log(process.memoryUsage().rss), 300)`;
  return Math.round(Number(execFileSync(process.execPath, ['-e', code]).toString()) / 1048576);
}

// What one GUILD_CREATE looks like (same generator and sizes as the simulator's).
const sample = new World({ id: '1', username: 'bot', global_name: null, discriminator: '0', avatar: null });
const sampleGuild = guildCreatePayload(sample, sample.addGuild(guildSize), 50);
const guildCreateBytes = JSON.stringify(sampleGuild).length;

// The default client.
const a = await simulator();
const def = spawn(
  process.execPath,
  [join('dist', 'benchmarks', 'default-client.js'), a.info.apiUrl, a.info.token, String(dispatches)],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
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
const defaultRss = rssMb(def.pid!);
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
const b = await simulator();
const redis = await startRedis();
const logs = makeTempDir('bench-gateway');
const gw = startProcess(
  'gateway',
  process.execPath,
  [join('dist', 'bin', 'shardwarden.js'), 'gateway'],
  join(logs.path, 'gateway.log'),
  {
    env: {
      ...process.env,
      SHARDWARDEN_BOT_NAME: 'bench',
      SHARDWARDEN_POD_INDEX: '0',
      SHARDWARDEN_TOTAL_SHARDS: String(shards),
      SHARDWARDEN_SHARDS_PER_POD: String(shards),
      SHARDWARDEN_CLUSTERS_PER_POD: '1',
      SHARDWARDEN_MAX_CONCURRENCY: String(shards),
      SHARDWARDEN_INTENTS: intents,
      SHARDWARDEN_EVENTS: 'MESSAGE_CREATE,INTERACTION_CREATE',
      SHARDWARDEN_HTTP_PORT: '0',
      DISCORD_TOKEN: b.info.token,
      DISCORD_API_URL: b.info.apiUrl,
      REDIS_URL: redis.url,
      SHARDWARDEN_LOG_LEVEL: 'info',
      NODE_OPTIONS: process.env.EAR_NODE_OPTIONS ?? '',
    },
  },
);
const queue = new Queue('events', { connection: { url: redis.url }, prefix: queuePrefix('bench') });
const redisInfo = new Redis(redis.url);
let port = 0;
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
await sleep(2_000);
const earPids = [gw.child.pid!, ...childPids(gw.child.pid!)];
const earRssByProcess = earPids.map((pid) => rssMb(pid));
const earRss = earRssByProcess.reduce((s, mb) => s + mb, 0);
await probe(earPids);
const received = async () => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('shardwarden_gateway_dispatches_received_total{type="MESSAGE_CREATE"}'));
  return Number(line?.split(' ').pop() ?? 0);
};
const earCpuPids = [...earPids, b.child.pid!];
const earCpuBefore = [...earCpuPids.map(cpuSeconds), await redisCpuSeconds(redisInfo)];
const earStart = performance.now();
await stream(b.info.controlUrl);
let earReceivedSeconds = 0;
await waitUntil(
  'all dispatches received and enqueued',
  async () => {
    if (!earReceivedSeconds && (await received()) >= dispatches)
      earReceivedSeconds = (performance.now() - earStart) / 1000;
    return earReceivedSeconds > 0 && (await queue.getWaitingCount()) >= dispatches;
  },
  { timeoutMs: 300_000, intervalMs: 50 },
);
const earSeconds = (performance.now() - earStart) / 1000;
const earCpu = [...earCpuPids.map(cpuSeconds), await redisCpuSeconds(redisInfo)].map(
  (c, i) => c - earCpuBefore[i]!,
);
await queue.close();
redisInfo.disconnect();
await gw.stop();
b.child.kill('SIGTERM');
await redis.close();

const round2 = (n: number) => Math.round(n * 100) / 100;
const rate = (seconds: number) => Math.round(dispatches / seconds);
console.log(
  JSON.stringify(
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
      nodeBaselineRssMb: {
        bare: baselineRssMb([]),
        withDiscordJs: baselineRssMb(['discord.js']),
      },
      defaultClient: {
        perDispatch: 'parse, build discord.js objects, update caches, emit messageCreate (empty listener)',
        guildsCached: readyAt.guilds,
        rssMbAfterGuildCreate: Math.round(defaultRss),
        dispatchesPerSecond: rate(defaultSeconds),
        cpuSecondsDuringStream: { client: round2(defaultCpu[0]!), simulator: round2(defaultCpu[1]!) },
      },
      ear: {
        perDispatch:
          'parse, count, de-duplication key, batch, BullMQ addBulk (a Lua script per job) into Redis: durable',
        processes: earPids.length,
        rssMbAfterGuildCreate: Math.round(earRss),
        rssMbByProcess: earRssByProcess.map(Math.round),
        dispatchesPerSecondReceived: rate(earReceivedSeconds),
        dispatchesPerSecondEnqueued: rate(earSeconds),
        cpuSecondsDuringStream: {
          primary: round2(earCpu[0]!),
          clusters: round2(earCpu.slice(1, earPids.length).reduce((s, c) => s + c, 0)),
          simulator: round2(earCpu[earPids.length]!),
          redis: round2(earCpu[earPids.length + 1]!),
        },
      },
      memoryRatio: Number((earRss / defaultRss).toFixed(3)),
      rateRatioEnqueuedVsDefault: Number((defaultSeconds / earSeconds).toFixed(2)),
      rateRatioReceivedVsDefault: Number((defaultSeconds / earReceivedSeconds).toFixed(2)),
    },
    null,
    2,
  ),
);
