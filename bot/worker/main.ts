// The worker process (the Brain): loads the handler modules, connects to the bot's Redis,
// Postgres and chain endpoints, consumes the bot's queues, and serves /healthz, /readyz and
// /metrics (private port) plus the modules' public routes (public port).
import Fastify from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createChainReader, type ChainReader } from '../chain/index.js';
import { ConfigError } from '../configuration/env-reader.js';
import {
  assertRowLevelSecurityApplies,
  createDatabase,
  migrate,
  UnsafeDatabaseRoleError,
  type Database,
} from '../database/index.js';
import { connectRedis } from '../configuration/redis-connection.js';
import { createDiscordRest } from '../discord-rest/index.js';
import { createLogger } from '../observability/logger.js';
import { startHttpServer } from '../observability/http-server.js';
import {
  botKey,
  DEDUP_WINDOW_SECONDS,
  eventPartitionPrefix,
  eventPartitionPrefixes,
  legacyQueuePrefix,
  queuePrefix,
  QUEUES,
  type QueueName,
} from '../queues/queue-names.js';
import { ENV } from '../runtime-contract.js';
import { parseWorkerConfig, type WorkerConfig } from './config.js';
import type { WorkerServices } from './handlers/bot-module.js';
import { HandlerRegistry } from './handlers/handler-registry.js';
import { loadHandlerModules } from './handlers/module-loader.js';
import { Cooldowns } from './interactions/cooldowns.js';
import { InteractionDispatcher } from './interactions/interaction-dispatcher.js';
import { readEventPartitions } from '../queues/partition-high-water.js';
import { WorkerMetrics } from './metrics.js';
import { PerKeyMarksWatch } from './processing/claim-format.js';
import { DispatchClaims } from './processing/dispatch-claims.js';
import { EventBatchRunner, Slots } from './processing/event-batch-runner.js';
import { LegacyQueueDrain } from './processing/legacy-queues.js';
import { RetiredPartitions } from './processing/retired-partitions.js';
import { QueueTaskScheduler, WorkerRuntime } from './processing/worker-runtime.js';

function configOrExit(env: NodeJS.ProcessEnv): WorkerConfig {
  try {
    return parseWorkerConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`worker: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

export async function runWorker(env: NodeJS.ProcessEnv): Promise<void> {
  const config = configOrExit(env);
  const log = createLogger('worker', config.logLevel, {
    bot: config.bot.name,
    namespace: config.bot.namespace,
  });
  const metricsRegistry = new Registry();
  collectDefaultMetrics({ register: metricsRegistry });
  const metrics = new WorkerMetrics(metricsRegistry);

  let modules;
  try {
    modules = await loadHandlerModules(config.handlerModules);
  } catch (err) {
    console.error(`worker: ${(err as Error).message}`);
    process.exit(2);
  }
  let registry: HandlerRegistry;
  try {
    registry = new HandlerRegistry(modules);
  } catch (err) {
    console.error(`worker: ${(err as Error).message}`);
    process.exit(2);
  }

  // One client (a Cluster on Redis Cluster) for the modules, the REST limiter and the queues.
  const redis = connectRedis(config.redis, { maxRetriesPerRequest: null });
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
  const rest = createDiscordRest({
    bot: config.bot,
    ...(config.applicationId ? { applicationId: config.applicationId } : {}),
    token: config.token,
    apiUrl: config.discordApiUrl,
    redis,
    globalPerSecond: config.restGlobalPerSecond,
    registry: metricsRegistry,
    logger: log,
  });

  let db: Database | undefined;
  if (config.databaseUrl) {
    db = createDatabase({
      url: config.databaseUrl,
      logger: log,
      registry: metricsRegistry,
      poolMax: config.databasePoolMax,
    });
    try {
      await assertRowLevelSecurityApplies(db);
    } catch (err) {
      if (!(err instanceof UnsafeDatabaseRoleError)) throw err;
      console.error(`worker: ${ENV.databaseUrl}: ${err.message}`);
      process.exit(2);
    }
    if (config.migrations === 'apply') {
      const { applied } = await migrate(config.databaseUrl, log);
      if (applied.length) log.info({ applied }, 'database migrations applied');
    }
  }
  let chain: ChainReader | undefined;
  if (config.chainRpcUrls.length)
    chain = createChainReader({
      rpcUrls: config.chainRpcUrls,
      ...(config.multicallAddress ? { multicallAddress: config.multicallAddress } : {}),
      registry: metricsRegistry,
      logger: log,
    });

  const applicationId = config.applicationId ?? ((await rest.get('/users/@me')) as { id: string }).id;
  const prefix = queuePrefix(config.bot);
  const tasks = new QueueTaskScheduler(redis, prefix);
  const services: WorkerServices = {
    botName: config.bot.name,
    applicationId,
    logger: log,
    rest,
    redis,
    key: (...parts) => botKey(config.bot, ...parts),
    ...(db ? { db } : {}),
    ...(chain ? { chain } : {}),
    tasks,
    metrics: metricsRegistry,
    publicUrl: config.publicUrl,
    env,
  };
  for (const m of modules) await m.setup?.(services);

  let publicApp: ReturnType<typeof Fastify> | undefined;
  if (modules.some((m) => m.routes)) {
    publicApp = Fastify({
      logger: false,
      bodyLimit: 64 * 1024,
      ...(config.publicTrustProxy !== undefined ? { trustProxy: config.publicTrustProxy } : {}),
    });
    for (const m of modules) await m.routes?.(publicApp, services);
    await publicApp.listen({ host: '0.0.0.0', port: config.publicHttpPort });
    const address = publicApp.server.address();
    log.info(
      { publicPort: typeof address === 'object' && address ? address.port : config.publicHttpPort },
      'public routes listening',
    );
  }

  const dispatcher = new InteractionDispatcher(
    registry,
    services,
    new Cooldowns(redis, services.key, 1_000, () =>
      log.warn('Redis did not answer a cooldown check within 1 s; the command runs without it'),
    ),
    metrics,
    log,
  );
  // One bound on handlers at once for every queue and partition the process consumes.
  const slots = new Slots(config.eventConcurrency);
  // One DispatchClaims per prefix claimed under, so the watch below reaches every one in use.
  const claimsByPrefix = new Map<string, DispatchClaims>();
  const claimsUnder = (claimsPrefix: string) => {
    let claims = claimsByPrefix.get(claimsPrefix);
    if (!claims) {
      claims = new DispatchClaims(redis, claimsPrefix, DEDUP_WINDOW_SECONDS);
      claimsByPrefix.set(claimsPrefix, claims);
    }
    return claims;
  };
  const eventRunner = (claimsPrefix: string) =>
    new EventBatchRunner({
      claims: claimsUnder(claimsPrefix),
      registry,
      services,
      metrics,
      slots,
      handlerTimeoutMs: config.handlerTimeoutMs,
    });
  // The jobs each partition's consumer holds: the process's share split over the partitions,
  // so P partitions do not hold P times the batches (their handlers share `slots` anyway).
  const partitionJobs = Math.max(1, Math.ceil(config.eventConcurrency / config.eventPartitions));
  const consumers = (queuePrefixOf: string, claimsPrefix = prefix, queues?: readonly QueueName[]) =>
    new WorkerRuntime({
      connection: redis,
      prefix: queuePrefixOf,
      ...(queues ? { queues } : {}),
      concurrency: {
        [QUEUES.interactions]: config.interactionConcurrency,
        [QUEUES.events]: partitionJobs,
        [QUEUES.singleEvents]: config.eventConcurrency,
        [QUEUES.tasks]: config.taskConcurrency,
      },
      registry,
      dispatcher,
      services,
      metrics,
      // Claims under the partition's prefix, in its slot; the old keys' jobs claim under the bot's.
      events: eventRunner(claimsPrefix),
      log,
    });
  // Partition 0 is the bot's prefix, where the other queues live too.
  const partitionConsumers = (partition: number) => {
    const partitionPrefix = eventPartitionPrefix(config.bot, partition);
    return partition === 0 ? consumers(prefix) : consumers(partitionPrefix, partitionPrefix, [QUEUES.events]);
  };
  const runtimes = Array.from({ length: config.eventPartitions }, (_, p) => partitionConsumers(p));
  // Workers of the release with per-key claims beside this one (a rolling upgrade): keep their
  // marks too while they are connected, and decide that before taking a batch.
  const claimFormat = new PerKeyMarksWatch({
    redis,
    botPrefix: prefix,
    prefixes: async () =>
      eventPartitionPrefixes(
        config.bot,
        Math.max(config.eventPartitions, await readEventPartitions(redis, config.bot)),
      ),
    claims: claimsUnder,
    singleJobPrefix: `${prefix}:${QUEUES.singleEvents}:`,
    windowSeconds: DEDUP_WINDOW_SECONDS,
    everyMs: config.legacyCheckMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    log,
  });
  await claimFormat.check();
  claimFormat.start();
  for (const r of runtimes) r.start();
  const running = () => runtimes.every((r) => r.running());
  // Jobs queued before the upgrade to keys by namespace and name (docs/operator.md, "Redis keys"),
  // when the operator says the old keys are this bot's.
  const legacy = config.legacyKeys
    ? new LegacyQueueDrain({
        redis,
        prefix: legacyQueuePrefix(config.bot.name),
        what: 'the old queue keys',
        consumers,
        checkEveryMs: config.legacyCheckMs,
        idleMs: config.legacyIdleMs,
        log,
      })
    : undefined;
  legacy?.start();
  // Partitions gateways wrote that this worker does not consume (the count was lowered, or the
  // gateways run ahead): drained while they hold jobs.
  const retired = new RetiredPartitions({
    redis,
    bot: config.bot,
    own: config.eventPartitions,
    checkEveryMs: config.legacyCheckMs,
    drain: (partition) =>
      new LegacyQueueDrain({
        redis,
        prefix: eventPartitionPrefix(config.bot, partition),
        what: `event partition ${partition}`,
        queues: [QUEUES.events],
        consumers: () => partitionConsumers(partition),
        checkEveryMs: config.legacyCheckMs,
        idleMs: config.legacyIdleMs,
        log,
      }),
    log,
  });
  retired.start();

  const { close: closeHttp, port } = await startHttpServer(
    '0.0.0.0',
    config.httpPort,
    metricsRegistry,
    {
      healthy: () => true,
      ready: () => running() && redis.status === 'ready',
      describe: () => ({
        redis: redis.status,
        workers: running() ? 'running' : 'stopped',
        ...(legacy?.draining() ? { oldQueueKeys: 'draining' } : {}),
        ...(retired.draining().length > 0 ? { drainingEventPartitions: retired.draining() } : {}),
      }),
    },
    log,
  );
  log.info(
    {
      port,
      modules: modules.map((m) => m.name),
      commands: registry.commandDefinitions().map((c) => c.name),
      events: registry.handledEventTypes(),
    },
    'worker started',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'stopping: finishing in-flight jobs');
    const closed = await Promise.all([
      ...runtimes.map((r) => r.close(config.shutdownTimeoutMs)),
      legacy?.close(config.shutdownTimeoutMs) ?? true,
      retired.close(config.shutdownTimeoutMs),
      claimFormat.stop(config.shutdownTimeoutMs).then(() => true),
    ]);
    if (!closed.every(Boolean))
      log.warn('shutdown timeout: in-flight jobs were left to be retried by another worker');
    await Promise.allSettled([closeHttp(), publicApp?.close(), tasks.close(), db?.close()]);
    redis.disconnect();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
