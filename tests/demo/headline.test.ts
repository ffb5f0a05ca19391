// The demo's closing table from range-query results: peak and last value, gaps (NaN) skipped,
// "no data" when Prometheus had nothing. And the queries of the table and the plots, on
// Prometheus' own engine (promtool): the shards READY per gateway generation, told apart by the
// pod names the operator gives each generation.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { demoQueries, headlineTable, headlines, peakAndLast } from '../../demo/headline.js';
import type { DiscordBot } from '../../operator/api/v1alpha1/types.js';
import { gatewayName } from '../../operator/rendering/gateway.js';
import { makeTempDir, promtoolBinary } from '../../testenv/index.js';

describe('the demo headline table', () => {
  test('peak and last value of the first series, NaN skipped', () => {
    expect(
      peakAndLast([
        {
          metric: {},
          values: [
            [1, '2'],
            [2, '7'],
            [3, 'NaN'],
            [4, '1'],
          ],
        },
      ]),
    ).toEqual({ peak: 7, last: 1 });
    expect(peakAndLast([])).toEqual({});
  });

  test('one row per headline, with its query; missing data says so', () => {
    const [shards, events] = headlines({ namespace: 'bots', name: 'ping' }, 8);
    const lines = headlineTable([
      { headline: shards!, peak: 6, last: 6 },
      { headline: events!, peak: 512.4, last: 3.256 },
    ]);
    expect(lines[0]).toMatch(/^series\s+peak\s+last\s+PromQL$/);
    expect(lines[1]).toMatch(
      /^shards READY\s+6\s+6\s+count\(max by \(shard\) \(shardwarden_gateway_shard_ready\{namespace="bots", bot="ping"\}\) == 1\)$/,
    );
    expect(lines[2]).toMatch(/^events received\/s\s+512\/s\s+3\.26\/s\s+sum\(rate\(.*\[8s\]\)\)$/);
    expect(headlineTable([{ headline: shards! }])[1]).toMatch(/no data\s+no data/);
  });

  test('Prometheus counts shards READY per gateway generation and distinct shards in all', () => {
    const bot = { namespace: 'bots', name: 'ping' };
    const pod = (generation: number) =>
      `${gatewayName({ metadata: { name: bot.name } } as DiscordBot, generation)}-0`;
    const ready = (generation: number, shard: number, values: string) => ({
      series: `shardwarden_gateway_shard_ready{namespace="bots", bot="ping", pod="${pod(generation)}", shard="${shard}"}`,
      values,
    });
    const q = demoQueries(bot, 8);
    const dir = makeTempDir('demo-queries');
    try {
      writeFileSync(
        join(dir.path, 'rules.yaml'),
        stringify({
          groups: [
            {
              name: 'demo',
              rules: [
                { record: 'by_generation', expr: q.shardsReadyByGeneration },
                { record: 'distinct', expr: q.shardsReady },
              ],
            },
          ],
        }),
      );
      // Generation 1 serves shards 0 and 1; generation 2 has shard 0 READY, shard 1 not yet.
      writeFileSync(
        join(dir.path, 'test.yaml'),
        stringify({
          rule_files: ['rules.yaml'],
          evaluation_interval: '1m',
          tests: [
            {
              interval: '1m',
              input_series: [ready(1, 0, '1x2'), ready(1, 1, '1x2'), ready(2, 0, '1x2'), ready(2, 1, '0x2')],
              promql_expr_test: [
                {
                  expr: 'by_generation',
                  eval_time: '1m',
                  exp_samples: [
                    { labels: 'by_generation{generation="1"}', value: 2 },
                    { labels: 'by_generation{generation="2"}', value: 1 },
                  ],
                },
                { expr: 'distinct', eval_time: '1m', exp_samples: [{ labels: 'distinct', value: 2 }] },
              ],
            },
          ],
        }),
      );
      const run = () => {
        try {
          return execFileSync(promtoolBinary(), ['test', 'rules', 'test.yaml'], {
            cwd: dir.path,
            encoding: 'utf8',
            stdio: 'pipe',
          });
        } catch (err) {
          const e = err as { stdout?: string; stderr?: string };
          return `${e.stdout ?? ''}${e.stderr ?? ''}`;
        }
      };
      expect(run()).toContain('SUCCESS');
    } finally {
      dir.remove();
    }
  });
});
