// Benchmark: 4 worker processes of one bot add 1,000 roles (PUT member role) through the
// Redis-shared REST limiter, against the simulator's global limit of 50 requests/s; then the
// same with default @discordjs/rest clients (a 50/s limiter per process) as the baseline.
// Prints JSON ending with `targets` (docs/benchmarks.md), computed from this run's figures.
// BENCH_REQUESTS, BENCH_WORKERS, BENCH_GUILDS, BENCH_GLOBAL_PER_SECOND override.
import { DiscordSimulator } from '../discord-simulator/index.js';
import { runScope, startRedis } from '../testenv/index.js';
import { roleChanges, runRestWorkers, type WorkerSettings } from './rest-limiter/run-workers.js';
import { atLeast, equal, printFigures } from './targets.js';

const requests = Number(process.env.BENCH_REQUESTS ?? 1_000);
const workers = Number(process.env.BENCH_WORKERS ?? 4);
// 100 guilds: 10 role changes per guild bucket (10 per second) over 20 s, never the bottleneck.
const guilds = Number(process.env.BENCH_GUILDS ?? 100);
const globalPerSecond = Number(process.env.BENCH_GLOBAL_PER_SECOND ?? 50);

// Whatever ends the run (its end, a failure, Ctrl-C), what it started stops.
const scope = runScope();
const redis = scope.own(await startRedis(), (r) => r.close());
const sim = scope.own(
  await DiscordSimulator.start({
    seed: 1,
    guilds,
    guildSize: { members: 10, channels: 1, roles: 3 },
    rest: { globalPerSecond },
  }),
  (s) => s.stop(),
);

/** The most requests that arrived within any 1 s (sliding) at the simulator. */
function busiestSecond(times: number[]): number {
  let max = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= 1000) j++;
    max = Math.max(max, i - j + 1);
  }
  return max;
}

async function run(mode: 'shared' | 'plain', bot: string) {
  sim.recorder.reset();
  for (const g of sim.world.guilds.values()) g.memberRoles.clear();
  const changes = roleChanges(sim, [...sim.world.guilds.keys()], requests);
  const lists = Array.from({ length: workers }, (_, w) => changes.filter((_, i) => i % workers === w));
  const settings: WorkerSettings = {
    redisUrl: redis.url,
    apiUrl: sim.apiUrl,
    token: sim.token,
    botName: bot,
    globalPerSecond,
    mode,
  };
  const { reports, wallMs } = await runRestWorkers(settings, lists, scope);
  const calls = sim.recorder.restCalls.filter((c) => c.route.startsWith('PUT /guilds/'));
  const landed = changes.filter(([g, u, r]) =>
    sim.world.member(sim.world.guild(g)!, u)!.roles.includes(r),
  ).length;
  const rate = requests / (wallMs / 1000);
  return {
    requestsAsked: requests,
    roleChangesLanded: landed,
    httpRequestsSeen: calls.length,
    responses429: sim.recorder.counters.rest429,
    failedCalls: reports.reduce((s, r) => s + r.failed, 0),
    wallSeconds: Number((wallMs / 1000).toFixed(2)),
    requestsPerSecond: Number(rate.toFixed(1)),
    percentOfGlobalLimit: Number(((100 * rate) / globalPerSecond).toFixed(1)),
    busiestSecondAtSimulator: busiestSecond(calls.map((c) => c.at).sort((a, b) => a - b)),
  };
}

const shared = await run('shared', 'bench');
const plain = await run('plain', 'bench-plain');
const rows = Object.keys(shared) as (keyof typeof shared)[];
const no429 = equal('429 responses, shared limiter', shared.responses429, 0);
const allLanded = equal('role changes landed, shared limiter', shared.roleChangesLanded, requests);
printFigures(
  {
    workers,
    guilds,
    globalPerSecond,
    side_by_side: Object.fromEntries(
      rows.map((k) => [k, { sharedLimiter: shared[k], defaultRestPerProcess: plain[k] }]),
    ),
  },
  [no429, atLeast('% of the global limit, shared limiter', shared.percentOfGlobalLimit, 90), allLanded],
);
// These two are the limiter's correctness, not its speed: without them the run fails.
if (!no429.met || !allLanded.met) process.exitCode = 1;
await scope.stop();
