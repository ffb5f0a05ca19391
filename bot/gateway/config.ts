// The gateway's settings, from the environment the operator renders (bot/runtime-contract.ts).
// A missing or bad value stops the process at start with one line naming the variable.
import { DISPATCH_NAMES, GatewayIntentBits } from './discord-gateway-names.js';
import type { LevelWithSilent } from 'pino';
import { readBotIdentity, type BotIdentity } from '../configuration/bot-identity.js';
import { ConfigError, EnvReader } from '../configuration/env-reader.js';
import type { RedisTarget } from '../configuration/redis-target.js';
import { ENV, GATEWAY_MALLOC_ENV, GATEWAY_MAX_SEMI_SPACE_MB, POD_HTTP_PORT } from '../runtime-contract.js';
import { shardRangeOfPod, type ShardRange } from '../sharding/shard-range.js';

// A misspelt dispatch type would otherwise forward nothing, silently.
const DISPATCH_NAME_SET = new Set(DISPATCH_NAMES);

export interface GatewayConfig extends BotIdentity {
  podIndex: number;
  totalShards: number;
  shardsPerPod: number;
  clustersPerPod: number;
  maxConcurrency: number;
  generation: number;
  intents: number;
  intentNames: string[];
  events: Set<string>;
  range: ShardRange;
  token: string;
  redis: RedisTarget;
  discordApiUrl: string;
  httpPort: number;
  identifyWindowMs: number;
  /** Dispatches kept in memory while Redis is unavailable. */
  bufferLimit: number;
  batchSize: number;
  batchDelayMs: number;
  /** Batches written to Redis at once (pipelined) under load. */
  batchesInFlight: number;
  /** How long a cluster process may take to get ready, per shard it runs (Kurasuta's timeout). */
  clusterStartTimeoutMs: number;
  /**
   * V8's --max-semi-space-size for the processes running shards, in MB; 0 leaves V8's default:
   * forked cluster processes get it as a node argument, an in-process pod restarts itself with
   * it (pod-clusters.ts, withSemiSpaceCap).
   */
  maxSemiSpaceMb: number;
  logLevel: LevelWithSilent;
}

/** The shard-running processes' semi-space cap unless set otherwise (GATEWAY_MAX_SEMI_SPACE_MB). */
export const DEFAULT_MAX_SEMI_SPACE_MB = GATEWAY_MAX_SEMI_SPACE_MB;

/**
 * Node arguments for a process running shards: the given ones, plus the semi-space cap unless
 * set already (in them or in NODE_OPTIONS, the user's choice wins).
 */
export function clusterNodeArgs(
  execArgv: string[],
  nodeOptions: string | undefined,
  maxSemiSpaceMb: number,
): string[] {
  const flag = '--max-semi-space-size';
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some(
    (a) => a === flag || a.startsWith(`${flag}=`),
  );
  return maxSemiSpaceMb > 0 && !given ? [...execArgv, `${flag}=${maxSemiSpaceMb}`] : [...execArgv];
}

/** Environment the cluster processes get on top of the pod's. */
export function clusterEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(GATEWAY_MALLOC_ENV).filter(([name]) => env[name] === undefined));
}

/** A bad or missing gateway setting (kept as its own name for callers that match on it). */
export class GatewayConfigError extends ConfigError {}

export function parseGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  try {
    return readGatewayConfig(new EnvReader(env), env);
  } catch (err) {
    if (err instanceof ConfigError && !(err instanceof GatewayConfigError))
      throw new GatewayConfigError(err.message);
    throw err;
  }
}

function readGatewayConfig(read: EnvReader, env: NodeJS.ProcessEnv): GatewayConfig {
  const required = (name: string) => read.required(name);
  const int = (name: string, min: number, fallback?: number) => read.int(name, min, fallback);
  const identity = readBotIdentity(read);
  // The ordinal comes from the pod-index label; fall back to the pod name's suffix (<sts>-<n>).
  let podIndex: number;
  if (env[ENV.podIndex]?.trim()) podIndex = int(ENV.podIndex, 0);
  else {
    const m = /-(\d+)$/.exec(env[ENV.podName] ?? '');
    if (!m)
      throw new GatewayConfigError(
        `${ENV.podIndex} is not set and ${ENV.podName}="${env[ENV.podName] ?? ''}" does not end in an ordinal`,
      );
    podIndex = Number(m[1]);
  }
  const totalShards = int(ENV.totalShards, 1);
  const shardsPerPod = int(ENV.shardsPerPod, 1);
  let range: ShardRange;
  try {
    range = shardRangeOfPod(podIndex, totalShards, shardsPerPod);
  } catch (err) {
    throw new GatewayConfigError(`${ENV.podIndex}=${podIndex}: ${(err as Error).message}`);
  }
  required(ENV.intents);
  const intentNames = read.list(ENV.intents);
  let intents = 0;
  for (const name of intentNames) {
    const bit: unknown = GatewayIntentBits[name as keyof typeof GatewayIntentBits];
    if (typeof bit !== 'number') throw new GatewayConfigError(`${ENV.intents} has unknown intent "${name}"`);
    intents |= bit;
  }
  required(ENV.events);
  const events = new Set(read.list(ENV.events));
  for (const e of events)
    if (!DISPATCH_NAME_SET.has(e))
      throw new GatewayConfigError(
        `${ENV.events} has "${e}", which is not a Discord dispatch name (e.g. MESSAGE_CREATE, INTERACTION_CREATE)`,
      );
  const redis = read.redis(ENV.redisUrl);
  const discordApiUrl = read.httpUrl(ENV.discordApiUrl, 'https://discord.com/api');
  const logLevel = read.logLevel();
  return {
    ...identity,
    podIndex,
    totalShards,
    shardsPerPod,
    clustersPerPod: int(ENV.clustersPerPod, 1, 1),
    maxConcurrency: int(ENV.maxConcurrency, 1, 1),
    generation: int(ENV.gatewayGeneration, 1, 1),
    intents,
    intentNames,
    events,
    range,
    token: required(ENV.discordToken),
    redis,
    discordApiUrl,
    httpPort: int(ENV.httpPort, 0, POD_HTTP_PORT),
    identifyWindowMs: int('SHARDWARDEN_IDENTIFY_WINDOW_MS', 100, 5_000),
    bufferLimit: int('SHARDWARDEN_BUFFER_LIMIT', 1, 50_000),
    // Bounded: a batch is one job, and one claim script holding Redis for all its keys.
    batchSize: read.int('SHARDWARDEN_BATCH_SIZE', 1, 100, 1_000),
    batchDelayMs: int('SHARDWARDEN_BATCH_DELAY_MS', 0, 5),
    batchesInFlight: read.int('SHARDWARDEN_BATCHES_IN_FLIGHT', 1, 4, 64),
    clusterStartTimeoutMs: int('SHARDWARDEN_CLUSTER_START_TIMEOUT_MS', 1_000, 60_000),
    maxSemiSpaceMb: read.int('SHARDWARDEN_MAX_SEMI_SPACE_MB', 0, DEFAULT_MAX_SEMI_SPACE_MB, 64),
    logLevel,
  };
}
