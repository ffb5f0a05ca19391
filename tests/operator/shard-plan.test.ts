import fc from 'fast-check';
import { shardRangeOfPod, splitOverClusters } from '../../bot/sharding/shard-range.js';
import { planShards, podRanges } from '../../operator/planning/shard-plan.js';
import type { ShardingSpec } from '../../operator/api/v1alpha1/types.js';

const spec = (s: Partial<ShardingSpec> = {}): ShardingSpec => ({
  mode: 'Auto',
  shards: 0,
  guildsPerShard: 1000,
  shardsPerPod: 16,
  clustersPerPod: 2,
  refreshInterval: '1h',
  reshardStrategy: 'BlueGreen',
  reshardTimeout: '10m',
  ...s,
});

describe('planShards', () => {
  test.each([
    // [description, spec, discord shards, max_concurrency, expected shards, pods, clusters]
    ['Auto follows the recommendation', spec(), 27, 1, 27, 2, 2],
    ['Auto scales by guildsPerShard (500 → twice as many)', spec({ guildsPerShard: 500 }), 27, 1, 54, 4, 2],
    ['Auto scales down with more guilds per shard', spec({ guildsPerShard: 2500 }), 10, 1, 4, 1, 2],
    ['Auto rounds up to a multiple of max_concurrency', spec(), 27, 16, 32, 2, 2],
    ['Auto never plans zero shards', spec(), 0, 1, 1, 1, 1],
    ['Fixed ignores the recommendation', spec({ mode: 'Fixed', shards: 10 }), 27, 16, 10, 1, 2],
    [
      'clustersPerPod is capped by shards in a pod',
      spec({ mode: 'Fixed', shards: 1, clustersPerPod: 4, shardsPerPod: 4 }),
      1,
      1,
      1,
      1,
      1,
    ],
    [
      'one shard per pod',
      spec({ mode: 'Fixed', shards: 3, shardsPerPod: 1, clustersPerPod: 1 }),
      1,
      1,
      3,
      3,
      1,
    ],
  ])('%s', (_d, s, recommended, maxConcurrency, shards, pods, clusters) => {
    const plan = planShards(s, { shards: recommended, maxConcurrency });
    expect(plan).toMatchObject({ shards, pods, clustersPerPod: clusters, maxConcurrency });
  });

  test('pod ranges are contiguous blocks of shardsPerPod, the last one shorter', () => {
    const plan = planShards(spec({ mode: 'Fixed', shards: 40, shardsPerPod: 16 }), {
      shards: 1,
      maxConcurrency: 1,
    });
    expect(podRanges(plan)).toEqual([
      { first: 0, last: 15 },
      { first: 16, last: 31 },
      { first: 32, last: 39 },
    ]);
  });

  test('property: every shard is in exactly one pod, ranges are contiguous and in order, no pod is empty', () => {
    fc.assert(
      fc.property(
        fc.record({
          mode: fc.constantFrom('Auto' as const, 'Fixed' as const),
          fixed: fc.integer({ min: 1, max: 5000 }),
          guildsPerShard: fc.integer({ min: 100, max: 2500 }),
          shardsPerPod: fc.integer({ min: 1, max: 1024 }),
          clustersPerPod: fc.integer({ min: 1, max: 64 }),
          recommended: fc.integer({ min: 0, max: 2000 }),
          maxConcurrency: fc.constantFrom(1, 16, 32, 64),
        }),
        (p) => {
          const plan = planShards(
            spec({
              mode: p.mode,
              shards: p.mode === 'Fixed' ? p.fixed : 0,
              guildsPerShard: p.guildsPerShard,
              shardsPerPod: p.shardsPerPod,
              clustersPerPod: Math.min(p.clustersPerPod, p.shardsPerPod),
            }),
            { shards: p.recommended, maxConcurrency: p.maxConcurrency },
          );
          expect(plan.shards).toBeGreaterThanOrEqual(1);
          if (p.mode === 'Auto') {
            expect(plan.shards * p.guildsPerShard).toBeGreaterThanOrEqual(Math.max(1, p.recommended) * 1000);
            if (p.maxConcurrency > 1) expect(plan.shards % p.maxConcurrency).toBe(0);
          }
          const ranges = podRanges(plan);
          expect(ranges).toHaveLength(plan.pods);
          let next = 0;
          const problems: string[] = [];
          for (const r of ranges) {
            if (r.first !== next) problems.push(`gap or overlap at ${r.first}`);
            if (r.last < r.first) problems.push(`empty pod at ${r.first}`);
            if (r.last - r.first + 1 > plan.shardsPerPod) problems.push(`pod at ${r.first} too large`);
            next = r.last + 1;
          }
          expect(problems).toEqual([]);
          expect(next).toBe(plan.shards); // every shard covered
          expect(plan.clustersPerPod).toBeLessThanOrEqual(plan.shardsPerPod);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('shard ranges as a pod derives them', () => {
  test('bad inputs name the value', () => {
    expect(() => shardRangeOfPod(3, 40, 16)).toThrow('pod index 3 is outside 0..2 (40 shards, 16 per pod)');
    expect(() => shardRangeOfPod(0, 0, 16)).toThrow('total shards must be a positive integer, got 0');
  });

  test('property: cluster split covers the range in order with sizes differing by at most one', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 500 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 64 }),
        (first, len, clusters) => {
          const parts = splitOverClusters({ first, last: first + len - 1 }, clusters);
          expect(parts.flat()).toEqual(Array.from({ length: len }, (_, i) => first + i));
          expect(parts.length).toBe(Math.min(clusters, len));
          const sizes = parts.map((p) => p.length);
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
          expect(Math.min(...sizes)).toBeGreaterThan(0);
        },
      ),
    );
  });
});
