// The worker's settings, from the environment the operator renders (bot/runtime-contract.ts) plus
// optional tuning variables. A missing or bad value stops the process with one line naming it.
import type { LevelWithSilent } from 'pino';
import { readBotIdentity, type BotIdentity } from '../configuration/bot-identity.js';
import { ConfigError, EnvReader } from '../configuration/env-reader.js';
import type { RedisTarget } from '../configuration/redis-target.js';
import { ENV, POD_HTTP_PORT, POD_PUBLIC_HTTP_PORT } from '../runtime-contract.js';
import { DEFAULT_HANDLER_MODULES } from './handlers/module-loader.js';

export const WORKER_ENV = {
  interactionConcurrency: 'SHARDWARDEN_INTERACTION_CONCURRENCY',
  taskConcurrency: 'SHARDWARDEN_TASK_CONCURRENCY',
  handlerModules: 'SHARDWARDEN_HANDLER_MODULES',
  restGlobalPerSecond: 'SHARDWARDEN_REST_GLOBAL_PER_SECOND',
  databasePoolMax: 'SHARDWARDEN_DATABASE_POOL_MAX',
  multicallAddress: 'CHAIN_MULTICALL_ADDRESS',
  commandsGuildId: 'SHARDWARDEN_COMMANDS_GUILD_ID',
  publicTrustProxy: 'SHARDWARDEN_PUBLIC_TRUST_PROXY',
  legacyCheckMs: 'SHARDWARDEN_LEGACY_QUEUE_CHECK_MS',
  legacyIdleMs: 'SHARDWARDEN_LEGACY_QUEUE_IDLE_MS',
  handlerTimeoutMs: 'SHARDWARDEN_HANDLER_TIMEOUT_MS',
} as const;

export interface WorkerConfig extends BotIdentity {
  token: string;
  discordApiUrl: string;
  redis: RedisTarget;
  databaseUrl?: string;
  chainRpcUrls: string[];
  multicallAddress?: `0x${string}`;
  /** Events queue concurrency (spec.worker.concurrency). */
  eventConcurrency: number;
  interactionConcurrency: number;
  taskConcurrency: number;
  handlerModules: string[];
  httpPort: number;
  publicHttpPort: number;
  publicUrl: string;
  /**
   * Proxies in front of the public port whose X-Forwarded-For is believed (addresses/CIDRs): the
   * per-client request limit then counts the member's address, not the proxy's.
   */
  publicTrustProxy?: string[];
  restGlobalPerSecond: number;
  /**
   * How long an event's handlers may run before the dispatch counts as failed (its batch is
   * retried): a stuck handler must not hold a batch, and its done marks, forever.
   */
  handlerTimeoutMs: number;
  /** How long SIGTERM waits for in-flight jobs before closing anyway. */
  shutdownTimeoutMs: number;
  migrations: 'apply' | 'skip';
  /** Postgres connections per worker process (jobs that use the database at once). */
  databasePoolMax: number;
  /**
   * How often the worker looks for jobs under the pre-namespace queue keys (legacy-queues.ts), and
   * for workers of the release with per-key claims (claim-format.ts).
   */
  legacyCheckMs: number;
  /** How long the old queues' consumers stay after the last activity there. */
  legacyIdleMs: number;
  logLevel: LevelWithSilent;
}

export function parseWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const read = new EnvReader(env);
  const eventConcurrency = read.int(ENV.workerConcurrency, 1, 50, 10_000);
  const publicHttpPort = read.int(ENV.publicHttpPort, 0, POD_PUBLIC_HTTP_PORT, 65_535);
  const migrations = read.optional(ENV.migrations) ?? 'apply';
  if (migrations !== 'apply' && migrations !== 'skip')
    throw new ConfigError(`${ENV.migrations}="${migrations}" must be apply or skip`);
  const multicall = read.optional(WORKER_ENV.multicallAddress);
  if (multicall !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(multicall))
    throw new ConfigError(
      `${WORKER_ENV.multicallAddress}="${multicall}" is not a 0x-prefixed 20-byte address`,
    );
  const databaseUrl = read.optional(ENV.databaseUrl);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\/./.test(databaseUrl))
    throw new ConfigError(`${ENV.databaseUrl} must be a postgres:// or postgresql:// URL`);
  const chainRpcUrls = read.list(ENV.chainRpcUrls);
  chainRpcUrls.forEach((u, i) => {
    if (!/^https?:\/\/./.test(u))
      throw new ConfigError(`${ENV.chainRpcUrls}: entry ${i + 1} is not an http(s) URL`);
  });
  return {
    ...readBotIdentity(read),
    token: read.required(ENV.discordToken),
    discordApiUrl: read.httpUrl(ENV.discordApiUrl, 'https://discord.com/api'),
    redis: read.redis(ENV.redisUrl),
    databaseUrl,
    chainRpcUrls,
    multicallAddress: multicall as `0x${string}` | undefined,
    eventConcurrency,
    interactionConcurrency: read.int(
      WORKER_ENV.interactionConcurrency,
      1,
      Math.max(eventConcurrency, 50),
      10_000,
    ),
    taskConcurrency: read.int(WORKER_ENV.taskConcurrency, 1, 4, 1_000),
    handlerModules: read.list(WORKER_ENV.handlerModules, DEFAULT_HANDLER_MODULES),
    httpPort: read.int(ENV.httpPort, 0, POD_HTTP_PORT, 65_535),
    publicHttpPort,
    publicUrl: read.httpUrl(ENV.publicUrl, `http://localhost:${publicHttpPort}`),
    publicTrustProxy: trustProxy(read.optional(WORKER_ENV.publicTrustProxy)),
    restGlobalPerSecond: read.int(WORKER_ENV.restGlobalPerSecond, 1, 50),
    shutdownTimeoutMs: read.int(ENV.workerShutdownTimeoutMs, 0, 50_000),
    handlerTimeoutMs: read.int(WORKER_ENV.handlerTimeoutMs, 100, 30_000, 3_600_000),
    migrations,
    databasePoolMax: read.int(WORKER_ENV.databasePoolMax, 1, 10, 500),
    legacyCheckMs: read.int(WORKER_ENV.legacyCheckMs, 100, 15_000),
    legacyIdleMs: read.int(WORKER_ENV.legacyIdleMs, 0, 10 * 60_000),
    logLevel: read.logLevel(),
  };
}

/**
 * By default the private ranges (where an in-cluster ingress controller lives) are trusted, so
 * members behind the ingress are told apart; `none` trusts no proxy.
 */
const DEFAULT_TRUST_PROXY = 'loopback,linklocal,uniquelocal';
const TRUST_PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

function trustProxy(raw: string | undefined): string[] | undefined {
  const value = raw ?? DEFAULT_TRUST_PROXY;
  if (value.trim() === 'none') return undefined;
  const list = value
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const bad = list.find((a) => !TRUST_PROXY_NAMES.includes(a) && !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(a));
  if (bad !== undefined || list.length === 0)
    throw new ConfigError(
      `${WORKER_ENV.publicTrustProxy}="${value}" must be none or a comma-separated list of addresses, CIDRs, ${TRUST_PROXY_NAMES.join(', ')}`,
    );
  return list;
}
