// Benchmark: the interaction round trip. The simulator sends INTERACTION_CREATE → a gateway
// process (the Ear) forwards it into BullMQ → one of two worker processes runs /ping → the
// callback reaches the simulator. Prints p50/p90/p99/max at a steady rate as JSON ending with
// `targets` (docs/benchmarks.md: p99 < 50 ms at 200 interactions/s with two workers, none late).
//   BENCH_RATE (200/s), BENCH_SECONDS (15), BENCH_WORKERS (2) override the defaults.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiscordSimulator } from '../discord-simulator/index.js';
import { freePort, makeTempDir, runScope, startProcess, startRedis, waitUntil } from '../testenv/index.js';
import { below, equal, printFigures } from './targets.js';

const rate = Number(process.env.BENCH_RATE ?? 200);
const seconds = Number(process.env.BENCH_SECONDS ?? 15);
const workers = Number(process.env.BENCH_WORKERS ?? 2);
const ENTRYPOINT = fileURLToPath(new URL('../bin/shardwarden.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../examples/custom-handlers/index.js', import.meta.url));
const BOT = 'rtt';

// Whatever ends the run (its end, a failure, Ctrl-C), what it started stops.
const scope = runScope();
const sim = scope.own(
  await DiscordSimulator.start({ seed: 3, guilds: 50, guildSize: { members: 20 } }),
  (s) => s.stop(),
);
const redis = scope.own(await startRedis(), (r) => r.close());
const logs = scope.own(makeTempDir('bench-rtt'), (d) => d.remove());
const common = {
  SHARDWARDEN_BOT_NAME: BOT,
  DISCORD_TOKEN: sim.token,
  DISCORD_API_URL: sim.apiUrl,
  REDIS_URL: redis.url,
  SHARDWARDEN_LOG_LEVEL: 'warn',
};

async function started(name: string, args: string[], env: Record<string, string>, port: number) {
  const proc = startProcess(name, process.execPath, [ENTRYPOINT, ...args], join(logs.path, `${name}.log`), {
    env: { ...process.env, ...common, ...env },
  });
  scope.own(proc, (p) => p.stop());
  await waitUntil(
    `${name} ready`,
    async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
    { process: proc, timeoutMs: 60_000, intervalMs: 100 },
  );
}

const gatewayPort = await freePort();
await started(
  'gateway',
  ['gateway'],
  {
    SHARDWARDEN_POD_INDEX: '0',
    SHARDWARDEN_TOTAL_SHARDS: '1',
    SHARDWARDEN_SHARDS_PER_POD: '1',
    SHARDWARDEN_CLUSTERS_PER_POD: '1',
    SHARDWARDEN_INTENTS: 'Guilds',
    SHARDWARDEN_EVENTS: 'INTERACTION_CREATE',
    SHARDWARDEN_HTTP_PORT: String(gatewayPort),
  },
  gatewayPort,
);
for (let i = 0; i < workers; i++) {
  const port = await freePort();
  await started(
    `worker-${i}`,
    ['worker'],
    {
      SHARDWARDEN_HANDLER_MODULES: EXAMPLE,
      SHARDWARDEN_HTTP_PORT: String(port),
      SHARDWARDEN_PUBLIC_HTTP_PORT: String(await freePort()),
    },
    port,
  );
}

const guilds = [...sim.world.guilds.keys()];
const total = rate * seconds;
const pending: Promise<{ latencyMs: number }>[] = [];
const start = performance.now();
for (let i = 0; i < total; i++) {
  const guildId = guilds[i % guilds.length]!;
  pending.push(
    sim.injectInteraction({
      guildId,
      userId: String(BigInt(guildId) + BigInt(1 + (i % 20))),
      command: 'ping',
    }).response,
  );
  const wait = start + ((i + 1) * 1000) / rate - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
}
const sentFor = (performance.now() - start) / 1000;
const latencies = (await Promise.all(pending)).map((r) => r.latencyMs).sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
const late = sim.recorder.violations.filter((v) => v.kind === 'interaction-late').length;
printFigures(
  {
    path: `simulator → gateway → BullMQ → ${workers} workers → callback`,
    workers,
    sent: total,
    ratePerSecond: rate,
    sentOverSeconds: Number(sentFor.toFixed(1)),
    answered: latencies.length,
    answeredLate: late,
    latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: latencies[latencies.length - 1] },
  },
  [
    below(`p99 latency (ms) at ${rate}/s with ${workers} workers`, pct(99), 50),
    equal('interactions answered after the 3 s window', late, 0),
  ],
);
await scope.stop();
