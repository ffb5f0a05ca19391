// Benchmark: the Ear (a gateway pod: Kurasuta primary + one cluster, lean discord.js, forwarding
// to BullMQ on a real Redis) against a default-cache discord.js Client, receiving the same
// gateway stream from the simulator: RSS after 10,000 guilds' GUILD_CREATE, then dispatches/s.
//   BENCH_GUILDS (10000), BENCH_MEMBERS (50), BENCH_DISPATCHES (50000) override the defaults.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { queuePrefix } from '../bot/queues/queue-names.js';
import { messagePayload } from '../discord-simulator/index.js';
import { startSimulatorProcess } from './simulator-process.js';
import { childPids, makeTempDir, rssMb, startRedis, waitUntil } from '../testenv/index.js';
import { startProcess } from '../testenv/processes.js';

const guilds = Number(process.env.BENCH_GUILDS ?? 10_000);
const members = Number(process.env.BENCH_MEMBERS ?? 50);
const dispatches = Number(process.env.BENCH_DISPATCHES ?? 50_000);
// The recommended count (one shard per 1,000 guilds), which the default client uses with shards: 'auto'.
const shards = Math.ceil(guilds / 1_000);

const simulator = () =>
  startSimulatorProcess([
    '--guilds',
    String(guilds),
    '--members',
    String(members),
    '--max-concurrency',
    String(shards),
  ]);

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

// The default client.
const a = await simulator();
const def = spawn(
  process.execPath,
  [join('dist', 'benchmarks', 'default-client.js'), a.info.apiUrl, a.info.token, String(dispatches)],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const lines = createInterface({ input: def.stdout! });
const next = () =>
  new Promise<Record<string, number>>((resolve) => lines.once('line', (l) => resolve(JSON.parse(l))));
const readyAt = await next();
const defaultRss = rssMb(def.pid!);
const defaultStart = performance.now();
const done = next();
await stream(a.info.controlUrl);
const defaultResult = await done;
const defaultSeconds = (performance.now() - defaultStart) / 1000;
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
      SHARDWARDEN_INTENTS: 'Guilds,GuildMessages',
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
await waitUntil(
  'gateway pods ready',
  async () => {
    const port = Number(/"port":(\d+)/.exec(readFileSync(gw.logFile, 'utf8'))?.[1] ?? 0);
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
await new Promise((r) => setTimeout(r, 2_000));
const earPids = [gw.child.pid!, ...childPids(gw.child.pid!)];
const earRss = earPids.reduce((s, pid) => s + rssMb(pid), 0);
const earRssByProcess = earPids.map((pid) => Math.round(rssMb(pid)));
const earStart = performance.now();
await stream(b.info.controlUrl);
await waitUntil('all dispatches enqueued', async () => (await queue.getWaitingCount()) >= dispatches, {
  timeoutMs: 300_000,
  intervalMs: 100,
});
const earSeconds = (performance.now() - earStart) / 1000;
await queue.close();
await gw.stop();
b.child.kill('SIGTERM');
await redis.close();

console.log(
  JSON.stringify(
    {
      guilds,
      membersPerGuild: members,
      shards,
      dispatches,
      defaultClient: {
        guildsCached: readyAt.guilds,
        rssMbAfterGuildCreate: Math.round(defaultRss),
        dispatchesPerSecond: Math.round(dispatches / defaultSeconds),
        handlerSeconds: Number((defaultResult.ms! / 1000).toFixed(2)),
      },
      ear: {
        processes: earPids.length,
        rssMbAfterGuildCreate: Math.round(earRss),
        rssMbByProcess: earRssByProcess,
        dispatchesPerSecondEnqueued: Math.round(dispatches / earSeconds),
      },
      memoryRatio: Number((earRss / defaultRss).toFixed(3)),
      rateRatio: Number((defaultSeconds / earSeconds).toFixed(2)),
    },
    null,
    2,
  ),
);
