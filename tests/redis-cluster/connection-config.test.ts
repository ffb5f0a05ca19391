import type { Cluster } from 'ioredis';
import { connectRedis } from '../../bot/configuration/redis-connection.js';
import { parseRedisTarget } from '../../bot/configuration/redis-target.js';
import { parseWorkerConfig } from '../../bot/worker/config.js';

describe("the Redis Secret's value", () => {
  test('a redis:// or rediss:// URL is one server, passed to ioredis as it is', () => {
    expect(parseRedisTarget('redis://:pw@redis:6379/2', 'REDIS_URL')).toEqual({
      cluster: false,
      url: 'redis://:pw@redis:6379/2',
      node: { host: 'redis', port: 6379 },
      db: 2,
      password: 'pw',
      tls: false,
    });
    expect(parseRedisTarget('rediss://redis', 'REDIS_URL')).toEqual({
      cluster: false,
      url: 'rediss://redis',
      node: { host: 'redis', port: 6379 },
      db: 0,
      tls: true,
    });
  });

  test('redis+cluster:// names cluster nodes, with credentials and TLS', () => {
    expect(
      parseRedisTarget(
        'redis+cluster://app:p%40ss@r-0.redis:7000,r-1.redis:7001,[::1]:7002,r-3',
        'REDIS_URL',
      ),
    ).toEqual({
      cluster: true,
      nodes: [
        { host: 'r-0.redis', port: 7000 },
        { host: 'r-1.redis', port: 7001 },
        { host: '::1', port: 7002 },
        { host: 'r-3', port: 6379 },
      ],
      username: 'app',
      password: 'p@ss',
      tls: false,
    });
    expect(parseRedisTarget('rediss+cluster://:secret@cfg.example:6380/', 'REDIS_URL')).toEqual({
      cluster: true,
      nodes: [{ host: 'cfg.example', port: 6380 }],
      password: 'secret',
      tls: true,
    });
  });

  test.each([
    ['http://redis', 'REDIS_URL must be a redis:// or rediss:// URL, or redis+cluster://'],
    ['not a url hunter2', 'REDIS_URL must be a redis:// or rediss:// URL, or redis+cluster://'],
    ['redis://:hunter2@x/abc', 'REDIS_URL: the path must be a database number'],
    ['redis+cluster://:hunter2@a:7000/0?x', 'REDIS_URL: a redis+cluster:// URL takes no query'],
    // The user info ends where the authority does: "1/" is no password.
    ['redis+cluster://a:1/@hunter2', 'REDIS_URL: a Redis Cluster has database 0 only'],
    ['redis+cluster://', 'REDIS_URL: cluster node 1 must be host or host:port'],
    ['redis+cluster://:hunter2@a:1,,b:2', 'REDIS_URL: cluster node 2 must be host or host:port'],
    ['redis+cluster://:hunter2@a:99999', 'REDIS_URL: cluster node 1 has a port outside 1-65535'],
    ['redis+cluster://:hunter2@a:7000/3', 'REDIS_URL: a Redis Cluster has database 0 only'],
    ['redis+cluster://:hunter2@a:7000?tls=1', 'REDIS_URL: a redis+cluster:// URL takes no query'],
    ['redis+cluster://:%zz@a:7000', 'REDIS_URL: the user or password is not valid percent-encoding'],
  ])('%s is refused, naming the field and never the password', (value, message) => {
    let error: Error | undefined;
    try {
      parseRedisTarget(value, 'REDIS_URL');
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toContain(message);
    expect(error?.message).not.toContain('hunter2');
  });

  test('a cluster client that waits out an outage waits out a failover; one that fails fast keeps failing fast', () => {
    const target = parseRedisTarget('redis+cluster://r-0.redis:7000', 'REDIS_URL');
    const waits = connectRedis(target, { lazyConnect: true, maxRetriesPerRequest: null }) as Cluster;
    const fast = connectRedis(target, { lazyConnect: true, maxRetriesPerRequest: 0 }) as Cluster;
    try {
      expect(waits.options.maxRedirections).toBe(Number.POSITIVE_INFINITY);
      expect(fast.options.maxRedirections).toBe(16); // ioredis's default: ~1.6 s
    } finally {
      waits.disconnect();
      fast.disconnect();
    }
  });

  test('over TLS a cluster client connects to the host names as given (certificates name them)', () => {
    const c = connectRedis(parseRedisTarget('rediss+cluster://r-0.redis:7000', 'REDIS_URL'), {
      lazyConnect: true,
    }) as Cluster;
    try {
      let resolved: string | undefined;
      c.options.dnsLookup!('r-0.redis', (_err, address) => (resolved = address));
      expect(resolved).toBe('r-0.redis');
      expect(c.options.redisOptions?.tls).toEqual({});
    } finally {
      c.disconnect();
    }
  });

  test('the worker refuses a bad cluster URL at start, naming REDIS_URL', () => {
    expect(() =>
      parseWorkerConfig({
        SHARDWARDEN_BOT_NAME: 'bot',
        DISCORD_TOKEN: 't',
        REDIS_URL: 'redis+cluster://:hunter2@a:0',
      }),
    ).toThrow('REDIS_URL: cluster node 1 has a port outside 1-65535');
  });
});
