import { clusterEnv, clusterNodeArgs, parseGatewayConfig } from '../../bot/gateway/config.js';
import { ENV, GATEWAY_MALLOC_ARENA_MAX } from '../../bot/runtime-contract.js';
import { runsInProcess } from '../../bot/gateway/cluster/pod-clusters.js';
import { splitOverClusters } from '../../bot/sharding/shard-range.js';

const base = {
  SHARDWARDEN_BOT_NAME: 'sietch',
  SHARDWARDEN_POD_INDEX: '1',
  SHARDWARDEN_TOTAL_SHARDS: '40',
  SHARDWARDEN_SHARDS_PER_POD: '16',
  SHARDWARDEN_INTENTS: 'Guilds,GuildMessages',
  SHARDWARDEN_EVENTS: 'INTERACTION_CREATE',
  DISCORD_TOKEN: 't',
  REDIS_URL: 'redis://redis:6379',
};

describe('gateway configuration from the pod environment', () => {
  test('one event partition unless told more', () => {
    expect(parseGatewayConfig(base).eventPartitions).toBe(1);
    expect(parseGatewayConfig({ ...base, SHARDWARDEN_EVENT_PARTITIONS: '12' }).eventPartitions).toBe(12);
  });

  test('the pod derives its shard range from its ordinal', () => {
    const c = parseGatewayConfig(base);
    expect(c.range).toEqual({ first: 16, last: 31 });
    expect(c.intents).toBe(1 | (1 << 9));
    expect([...c.events]).toEqual(['INTERACTION_CREATE']);
    expect(c).toMatchObject({
      clustersPerPod: 1,
      maxConcurrency: 1,
      generation: 1,
      httpPort: 8080,
      identifyWindowMs: 5000,
      discordApiUrl: 'https://discord.com/api',
      logLevel: 'info',
    });
    expect(parseGatewayConfig({ ...base, SHARDWARDEN_POD_INDEX: '2' }).range).toEqual({
      first: 32,
      last: 39,
    });
  });

  test('without the pod-index label the ordinal comes from the pod name', () => {
    const env: Record<string, string> = { ...base, POD_NAME: 'sietch-gateway-2' };
    delete env.SHARDWARDEN_POD_INDEX;
    expect(parseGatewayConfig(env).podIndex).toBe(2);
  });

  test.each([
    [{ SHARDWARDEN_TOTAL_SHARDS: '' }, 'SHARDWARDEN_TOTAL_SHARDS is required but not set'],
    [
      { SHARDWARDEN_POD_INDEX: '3' },
      'SHARDWARDEN_POD_INDEX=3: pod index 3 is outside 0..2 (40 shards, 16 per pod)',
    ],
    [{ SHARDWARDEN_INTENTS: 'Guilds,Everything' }, 'SHARDWARDEN_INTENTS has unknown intent "Everything"'],
    [
      { SHARDWARDEN_MAX_SEMI_SPACE_MB: '65' },
      'SHARDWARDEN_MAX_SEMI_SPACE_MB="65" must be an integer >= 0 and <= 64',
    ],
    [
      { SHARDWARDEN_EVENTS: 'message_create' },
      'SHARDWARDEN_EVENTS has "message_create", which is not a Discord dispatch name',
    ],
    [
      { SHARDWARDEN_EVENTS: 'INTERACTION_CREATE,MESSAGE_CREAT' },
      'SHARDWARDEN_EVENTS has "MESSAGE_CREAT", which is not a Discord dispatch name',
    ],
    [{ SHARDWARDEN_BATCH_SIZE: '1001' }, 'SHARDWARDEN_BATCH_SIZE="1001" must be an integer >= 1 and <= 1000'],
    [
      { SHARDWARDEN_BATCHES_IN_FLIGHT: '0' },
      'SHARDWARDEN_BATCHES_IN_FLIGHT="0" must be an integer >= 1 and <= 64',
    ],
    [
      { SHARDWARDEN_EVENT_PARTITIONS: '65' },
      'SHARDWARDEN_EVENT_PARTITIONS="65" must be an integer >= 1 and <= 64',
    ],
    [
      { DISCORD_API_URL: 'ftp://bot:s3cret@example.com/api' },
      'DISCORD_API_URL must be an http:// or https:// URL (got ftp://)',
    ],
    [{ REDIS_URL: 'http://redis' }, 'REDIS_URL must be a redis:// or rediss:// URL'],
    [{ DISCORD_TOKEN: ' ' }, 'DISCORD_TOKEN is required but not set'],
    [
      { SHARDWARDEN_LOG_LEVEL: 'loud' },
      'SHARDWARDEN_LOG_LEVEL="loud" must be one of fatal, error, warn, info, debug, trace, silent',
    ],
  ])('%j is refused: %s', (patch, message) => {
    expect(() => parseGatewayConfig({ ...base, ...patch })).toThrow(message);
  });

  test('the token never appears in an error', () => {
    try {
      parseGatewayConfig({ ...base, DISCORD_TOKEN: 'secret-token-value', SHARDWARDEN_TOTAL_SHARDS: 'x' });
    } catch (err) {
      expect((err as Error).message).not.toContain('secret-token-value');
    }
    expect.assertions(1);
  });

  test('cluster processes get a semi-space cap unless the pod already sets one', () => {
    expect(parseGatewayConfig(base).maxSemiSpaceMb).toBe(4);
    expect(clusterNodeArgs(['--enable-source-maps'], undefined, 4)).toEqual([
      '--enable-source-maps',
      '--max-semi-space-size=4',
    ]);
    expect(clusterNodeArgs(['--max-semi-space-size=16'], '', 4)).toEqual(['--max-semi-space-size=16']);
    expect(clusterNodeArgs([], '--max-semi-space-size=2 --enable-source-maps', 4)).toEqual([]);
    expect(clusterNodeArgs([], undefined, 0)).toEqual([]);
  });

  test('cluster processes get 2 malloc arenas unless the pod sets them', () => {
    expect(clusterEnv({})).toEqual({ [ENV.mallocArenaMax]: GATEWAY_MALLOC_ARENA_MAX });
    expect(clusterEnv({ [ENV.mallocArenaMax]: '8' })).toEqual({});
  });

  test("the in-process shape is the spec's clustersPerPod 1, not a pod that ends up with one cluster", () => {
    // 17 shards at 16 per pod, default clusters per pod: pod 1 has one shard, one cluster.
    const pod1 = parseGatewayConfig({
      ...base,
      SHARDWARDEN_POD_INDEX: '1',
      SHARDWARDEN_TOTAL_SHARDS: '17',
      SHARDWARDEN_SHARDS_PER_POD: '16',
      SHARDWARDEN_CLUSTERS_PER_POD: '2',
    });
    expect(splitOverClusters(pod1.range, pod1.clustersPerPod)).toEqual([[16]]);
    expect(runsInProcess(pod1)).toBe(false);
    expect(runsInProcess({ clustersPerPod: 1 })).toBe(true);
  });
});
