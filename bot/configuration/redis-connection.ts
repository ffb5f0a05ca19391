// The one place a Redis client is made: the value of a bot's Redis Secret (REDIS_URL) names
// either one server (`redis://`, `rediss://`, as ioredis takes it) or a Redis Cluster
// (`redis+cluster://[user:password@]host:port[,host:port...]`, `rediss+cluster://` for TLS):
// a few of its nodes, from which ioredis learns the rest. Every client of the gateway, the
// workers and the operator is made by connectRedis(), so none can miss the cluster case.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './redis-target.js';

/**
 * ioredis 6 defines `class VerbatimString extends String`, and V8 (Node 24) turns
 * String.prototype into a dictionary-mode object once any class extends String. From then on
 * every string method call in the process (`s.charCodeAt(i)`, `s.slice()`, `s.startsWith()`, in
 * our code and every library's) looks the method up through V8's generic property load
 * (docs/benchmarks.md, "String.prototype and ioredis").
 * Loads of a property through an object whose prototype is String.prototype, repeated until V8
 * caches the lookup, make V8 turn the prototype fast again. Done once here, after ioredis is
 * loaded (every process that loads it makes its clients in this module); the test that V8 still
 * does so: tests/configuration/redis-connection.test.ts.
 */
function restoreFastStringPrototype(): void {
  const probe = Object.create(String.prototype) as { charCodeAt?: unknown };
  let found = 0;
  for (let i = 0; i < 10_000; i++) if (probe.charCodeAt) found++;
  if (found === 0) throw new Error('String.prototype.charCodeAt is missing');
}
restoreFastStringPrototype();

/** What every Redis user in the code takes: one server or a cluster. */
export type RedisClient = Redis | Cluster;

/**
 * How long a Cluster command waits between tries while its slot has no reachable master (the
 * master is down and not yet replaced, the cluster says CLUSTERDOWN or TRYAGAIN).
 */
const CLUSTER_RETRY_DELAY_MS = 200;

/**
 * The Cluster's retries. ioredis gives up on a command after maxRedirections (16) tries 100 ms
 * apart, ~1.6 s, while a crashed master is replaced only after cluster-node-timeout (15 s by
 * default) and an election; its per-node connections never reconnect by themselves. A caller that
 * waits out an outage of one Redis (maxRetriesPerRequest: null) waits out a failover the same way:
 * no limit on the tries. Otherwise ioredis's defaults (fail fast, as that caller asked).
 */
export function clusterRetryOptions(options: RedisOptions): ClusterOptions {
  if (options.maxRetriesPerRequest !== null) return {};
  return {
    maxRedirections: Number.POSITIVE_INFINITY,
    retryDelayOnFailover: CLUSTER_RETRY_DELAY_MS,
    retryDelayOnClusterDown: CLUSTER_RETRY_DELAY_MS,
    retryDelayOnTryAgain: CLUSTER_RETRY_DELAY_MS,
  };
}

const keepHostName: NonNullable<ClusterOptions['dnsLookup']> = (address, callback) => callback(null, address);

/**
 * A client for `target`: a Redis for one server, a Cluster for a cluster. `options` are those of
 * a single connection; for a cluster they apply to each node's connection, except what ioredis
 * sets on the Cluster itself (lazyConnect, enableOfflineQueue, enableReadyCheck, retryStrategy),
 * and maxRetriesPerRequest: null also makes the Cluster wait out a failover (clusterRetryOptions).
 */
export function connectRedis(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  if (!target.cluster) return new Redis(target.url, options);
  const { lazyConnect, enableOfflineQueue, enableReadyCheck, retryStrategy, ...perNode } = options;
  const clusterOptions: ClusterOptions = {
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...(enableReadyCheck !== undefined ? { enableReadyCheck } : {}),
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) } : {}),
    ...clusterRetryOptions(options),
    // With TLS, keep the names the URL gives: ioredis would resolve them to addresses first, and
    // a certificate issued for a host name would not match (ioredis's advice for TLS clusters).
    ...(target.tls ? { dnsLookup: keepHostName } : {}),
    redisOptions: {
      ...perNode,
      ...(target.username !== undefined ? { username: target.username } : {}),
      ...(target.password !== undefined ? { password: target.password } : {}),
      // The caller's TLS options (a CA of its own) are kept; rediss+cluster:// turns TLS on.
      ...(target.tls ? { tls: perNode.tls ?? {} } : {}),
    },
  };
  return new Cluster(
    target.nodes.map((n) => ({ ...n })),
    clusterOptions,
  );
}
