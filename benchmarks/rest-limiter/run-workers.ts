// Parent side of benchmarks/rest-limiter/worker.ts, shared by the benchmark and the tests:
// builds role changes from the simulator's world, starts the worker processes, lets them all
// go at once and collects their reports.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DiscordSimulator } from '../../discord-simulator/index.js';
import type { RunScope } from '../../testenv/run-scope.js';

export type RoleChange = [guildId: string, userId: string, roleId: string];

export interface WorkerReport {
  done: number;
  failed: number;
  errors: string[];
  elapsedMs: number;
  rateLimited: number;
  /** The worker's longest event-loop stall while it sent (stall.ts). */
  longestStallMs: number;
}

export interface WorkerSettings {
  redisUrl: string;
  apiUrl: string;
  token: string;
  botName: string;
  globalPerSecond: number;
  /** The limiter's globalMarginMs (its default when absent). */
  globalMarginMs?: number;
  /** `plain`: a default @discordjs/rest client per process, without the shared limiter. */
  mode?: 'shared' | 'plain';
}

// Compiled, this file sits next to worker.js; run from source (jest), the build is used.
const here = dirname(fileURLToPath(import.meta.url));
const WORKER = here.endsWith(join('dist', 'benchmarks', 'rest-limiter'))
  ? join(here, 'worker.js')
  : join(here, '..', '..', 'dist', 'benchmarks', 'rest-limiter', 'worker.js');

/**
 * `count` distinct role additions spread round-robin over `guildIds` (each guild gets its
 * members × roles combinations in turn), so per-guild buckets see as little as possible.
 */
export function roleChanges(sim: DiscordSimulator, guildIds: string[], count: number): RoleChange[] {
  const perGuild = guildIds.map((id) => {
    const guild = sim.world.guild(id)!;
    const members = sim.world
      .members(guild, guild.size.members + 1)
      .map((m) => m.user.id)
      .filter((u) => u !== sim.world.botUser.id);
    const roles = sim.world.roles(guild).slice(1); // not @everyone
    return members.flatMap((u) => roles.map((r): RoleChange => [id, u, r.id]));
  });
  const out: RoleChange[] = [];
  for (let i = 0; out.length < count; i++) {
    const list = perGuild[i % guildIds.length]!;
    const change = list[Math.floor(i / guildIds.length)];
    if (!change) throw new Error(`only ${out.length} distinct role changes in ${guildIds.length} guilds`);
    out.push(change);
  }
  return out;
}

/** The child's next stdout JSON line that has `key` (its log lines are JSON too: skipped). */
function jsonLines(child: ChildProcess): (key: string) => Promise<unknown> {
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return async (key) => {
    for (;;) {
      const { value, done } = await lines.next();
      if (done) throw new Error(`rest worker exited (${child.exitCode}) before its ${key} line`);
      if (!(value as string).startsWith('{')) continue;
      const parsed = JSON.parse(value as string) as Record<string, unknown>;
      if (key in parsed) return parsed;
    }
  };
}

/**
 * Runs one worker process per task list; they start sending together. Returns their reports
 * and the wall time from the start signal to the last report.
 */
export async function runRestWorkers(
  settings: WorkerSettings,
  taskLists: RoleChange[][],
  /** The run's scope, so an interrupted benchmark stops the workers too. */
  scope?: Pick<RunScope, 'own'>,
): Promise<{ reports: WorkerReport[]; wallMs: number }> {
  if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: build first (make build)`);
  const children = taskLists.map(() =>
    spawn(process.execPath, [WORKER], {
      env: {
        ...process.env,
        REST_WORKER_REDIS_URL: settings.redisUrl,
        REST_WORKER_API_URL: settings.apiUrl,
        REST_WORKER_TOKEN: settings.token,
        REST_WORKER_BOT: settings.botName,
        REST_WORKER_GLOBAL_PER_SECOND: String(settings.globalPerSecond),
        ...(settings.globalMarginMs === undefined
          ? {}
          : { REST_WORKER_GLOBAL_MARGIN_MS: String(settings.globalMarginMs) }),
        REST_WORKER_MODE: settings.mode ?? 'shared',
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const kill = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  };
  scope?.own(children, kill);
  try {
    const next = children.map(jsonLines);
    await Promise.all(next.map((read) => read('ready')));
    const started = performance.now();
    children.forEach((c, i) => c.stdin!.write(`${JSON.stringify({ tasks: taskLists[i] })}\n`));
    const reports = (await Promise.all(next.map((read) => read('done')))) as WorkerReport[];
    return { reports, wallMs: performance.now() - started };
  } finally {
    kill();
  }
}
