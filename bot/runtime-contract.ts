// The environment the operator renders into gateway and worker pods, and that the bot
// entrypoints read. One list, so the two sides cannot disagree on a name.
export const ENV = {
  botName: 'SHARDWARDEN_BOT_NAME',
  botNamespace: 'SHARDWARDEN_BOT_NAMESPACE',
  /**
   * The Discord application the token belongs to (the operator asks Discord once per token):
   * the identify and REST budgets are counted under it, shared by every bot using the token.
   */
  applicationId: 'SHARDWARDEN_APPLICATION_ID',
  /**
   * Set ("1") when no other DiscordBot has this bot's name: its pods may then read what a release
   * that keyed Redis by name alone left (sessions to resume, queues to drain) as their own.
   */
  legacyKeys: 'SHARDWARDEN_LEGACY_KEYS',
  podName: 'POD_NAME',
  /** The StatefulSet pod ordinal, from the apps.kubernetes.io/pod-index label (downward API). */
  podIndex: 'SHARDWARDEN_POD_INDEX',
  totalShards: 'SHARDWARDEN_TOTAL_SHARDS',
  shardsPerPod: 'SHARDWARDEN_SHARDS_PER_POD',
  clustersPerPod: 'SHARDWARDEN_CLUSTERS_PER_POD',
  maxConcurrency: 'SHARDWARDEN_MAX_CONCURRENCY',
  gatewayGeneration: 'SHARDWARDEN_GATEWAY_GENERATION',
  intents: 'SHARDWARDEN_INTENTS',
  events: 'SHARDWARDEN_EVENTS',
  /** spec.redis.eventPartitions: the event partitions gateways write and workers consume. */
  eventPartitions: 'SHARDWARDEN_EVENT_PARTITIONS',
  workerConcurrency: 'SHARDWARDEN_WORKER_CONCURRENCY',
  /** How long a worker waits for in-flight jobs after SIGTERM (fits the pod's grace period). */
  workerShutdownTimeoutMs: 'SHARDWARDEN_SHUTDOWN_TIMEOUT_MS',
  httpPort: 'SHARDWARDEN_HTTP_PORT',
  /** Worker: port of the public routes (wallet verification). */
  publicHttpPort: 'SHARDWARDEN_PUBLIC_HTTP_PORT',
  /** Worker: the URL members reach the public routes at (links sent in Discord). */
  publicUrl: 'SHARDWARDEN_PUBLIC_URL',
  discordToken: 'DISCORD_TOKEN',
  discordApiUrl: 'DISCORD_API_URL',
  redisUrl: 'REDIS_URL',
  databaseUrl: 'DATABASE_URL',
  /** Worker: `apply` runs migrations at start; the operator renders `skip` (an init container migrates). */
  migrations: 'SHARDWARDEN_MIGRATIONS',
  chainRpcUrls: 'CHAIN_RPC_URLS',
  /** glibc's malloc arena limit, rendered into gateway pods (GATEWAY_MALLOC_ARENA_MAX). */
  mallocArenaMax: 'MALLOC_ARENA_MAX',
} as const;

/** Port of /healthz, /readyz and /metrics in every pod. */
export const POD_HTTP_PORT = 8080;

/**
 * glibc's MALLOC_ARENA_MAX for the gateway pod's processes (rendered into the pod; the primary
 * also forks its clusters with it when unset). Each thread that allocates (V8's GC helpers,
 * libuv's pool) may otherwise get an arena of its own, and each keeps what the GUILD_CREATE
 * burst freed: with 2, 3-4 MB less in the primary and 5-10 MB less in a cluster process after
 * 50,000 guilds (measured with a 1 MB semi-space; docs/benchmarks.md, "The lean Ear"). glibc
 * reads it at process start.
 */
export const GATEWAY_MALLOC_ARENA_MAX = '2';

/**
 * glibc's settings for the gateway pod's processes, rendered into the pod. Not the mmap
 * threshold (MALLOC_MMAP_THRESHOLD_=8192): its memory gain was within run-to-run noise and its
 * CPU cost (an mmap and munmap for every buffer of 8 KB or more) not shown to be small
 * (docs/gateway.md, "What a cluster process keeps").
 */
export const GATEWAY_MALLOC_ENV: Readonly<Record<string, string>> = {
  [ENV.mallocArenaMax]: GATEWAY_MALLOC_ARENA_MAX,
};

/**
 * The gateway's young generation, in MB. V8 grows each semi-space up to 64 MB under a stream
 * of short-lived garbage (every dispatch's parsed JSON), and never gives the pages back: about
 * 128 MB of RSS per process running shards after the GUILD_CREATE burst. A small cap costs only
 * more frequent (cheap) scavenges, measured in docs/benchmarks.md; it cannot make the process
 * run out of memory, unlike an old-space cap, which is therefore not set. 4 MB, not 1: 1 MB
 * keeps about 7 MB less after the burst but costs about 17 % more CPU per dispatch
 * (docs/benchmarks.md). The default of SHARDWARDEN_MAX_SEMI_SPACE_MB: the gateway passes it as
 * a node flag to the processes running shards (gateway/config.ts, clusterNodeArgs), never
 * through NODE_OPTIONS, which stays the image's or the user's.
 */
export const GATEWAY_MAX_SEMI_SPACE_MB = 4;

/** Port of the worker's public routes (wallet verification), apart from /metrics. */
export const POD_PUBLIC_HTTP_PORT = 8081;
