// One bot worker process for the REST limiter benchmark and tests: a createDiscordRest client
// that, once told, adds every role it is given (PUT member role) and reports how it went.
// Protocol: prints {"ready":true}; reads one JSON line {"tasks": [[guildId, userId, roleId], ...]};
// prints {"done", "failed", "errors", "elapsedMs", "rateLimited", "longestStallMs"} and exits.
// Settings come from the environment (the token too, so it is not on a command line).
// REST_WORKER_MODE=plain uses a default @discordjs/rest client instead (each process has its own
// 50/s global limiter): the benchmark's baseline.
import { createInterface } from 'node:readline';
import { REST } from '@discordjs/rest';
import { Routes } from 'discord.js';
import { Redis } from 'ioredis';
// For its side effect, as every Shardwarden process that loads ioredis: String.prototype made
// fast again after it (bot/configuration/redis-connection.ts).
import '../../bot/configuration/redis-connection.js';
import { Registry } from 'prom-client';
import { createDiscordRest } from '../../bot/discord-rest/index.js';
import { createLogger } from '../../bot/observability/logger.js';
import { botRef, DEFAULT_NAMESPACE } from '../../bot/queues/queue-names.js';
import { longestStall } from './stall.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

const redis = new Redis(env('REST_WORKER_REDIS_URL'), { lazyConnect: true });
await redis.connect();
const registry = new Registry();
const rest =
  process.env.REST_WORKER_MODE === 'plain'
    ? new REST({ api: env('REST_WORKER_API_URL') }).setToken(env('REST_WORKER_TOKEN'))
    : createDiscordRest({
        bot: botRef(DEFAULT_NAMESPACE, env('REST_WORKER_BOT')),
        token: env('REST_WORKER_TOKEN'),
        apiUrl: env('REST_WORKER_API_URL'),
        redis,
        globalPerSecond: Number(env('REST_WORKER_GLOBAL_PER_SECOND')),
        globalMarginMs: process.env.REST_WORKER_GLOBAL_MARGIN_MS
          ? Number(process.env.REST_WORKER_GLOBAL_MARGIN_MS)
          : undefined,
        registry,
        logger: createLogger('discord-rest', 'warn', { worker: process.pid }),
      });

const lines = createInterface({ input: process.stdin });
console.log(JSON.stringify({ ready: true }));
const line = await new Promise<string>((resolve) => lines.once('line', resolve));
const { tasks } = JSON.parse(line) as { tasks: [string, string, string][] };

const started = performance.now();
const [results, longestStallMs] = await longestStall(() =>
  Promise.allSettled(tasks.map(([guild, user, role]) => rest.put(Routes.guildMemberRole(guild, user, role)))),
);
const elapsedMs = performance.now() - started;
const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
const limited = (await registry.getSingleMetric('shardwarden_discord_rest_rate_limited_total')?.get())
  ?.values;
console.log(
  JSON.stringify({
    done: results.length - failures.length,
    failed: failures.length,
    errors: failures.slice(0, 3).map((f) => String((f.reason as Error)?.message ?? f.reason)),
    elapsedMs,
    rateLimited: (limited ?? []).reduce((sum, v) => sum + v.value, 0),
    longestStallMs,
  }),
);
lines.close();
await redis.quit();
process.exit(0);
