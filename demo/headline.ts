// The demo's closing table: the headline series Prometheus scraped during the scenario (shards
// READY, events/s, backlog, worker replicas, interaction p99), each as its peak and its last
// value (the last window that had data: interactions stop before the end), with the PromQL
// behind it so a reader can paste it into Prometheus' UI.
import type { PrometheusServer, PromSeries } from '../testenv/index.js';

export interface Headline {
  name: string;
  /** Over the whole scenario at `stepSeconds` resolution. */
  expr: string;
  unit: string;
}

/** The headline queries for one bot; `rate` is the window of rates (≥ 4 scrape intervals). */
export function headlines(bot: { namespace: string; name: string }, rateSeconds: number): Headline[] {
  const sel = `namespace="${bot.namespace}", bot="${bot.name}"`;
  return [
    {
      name: 'shards READY',
      // Distinct shards, as ShardwardenShardDown counts them: during a BlueGreen reshard both
      // generations report theirs.
      expr: `count(max by (shard) (shardwarden_gateway_shard_ready{${sel}}) == 1)`,
      unit: '',
    },
    {
      name: 'events received/s',
      expr: `sum(rate(shardwarden_gateway_dispatches_received_total{${sel}}[${rateSeconds}s]))`,
      unit: '/s',
    },
    {
      name: 'backlog (jobs)',
      expr: `max(shardwarden_operator_worker_backlog{namespace="${bot.namespace}", name="${bot.name}"})`,
      unit: '',
    },
    { name: 'worker replicas', expr: `max(shardwarden_bot_worker_replicas{${sel}})`, unit: '' },
    {
      name: 'interaction p99',
      // Over the buckets as counted since each worker started, not a rate: the demo's few
      // interactions often all land before a worker's first scrape, and a rate sees no increase.
      expr: `histogram_quantile(0.99, sum by (le) (shardwarden_worker_interaction_response_seconds_bucket{${sel}})) * 1000`,
      unit: ' ms',
    },
  ];
}

/** Peak and last value of a range query's first series; NaN (no data in a window) is skipped. */
export function peakAndLast(series: PromSeries[]): { peak?: number; last?: number } {
  const values = (series[0]?.values ?? []).map(([, v]) => Number(v)).filter((v) => Number.isFinite(v));
  return values.length ? { peak: Math.max(...values), last: values.at(-1) } : {};
}

/** The table as text lines: name, peak, last, query. */
export function headlineTable(rows: { headline: Headline; peak?: number; last?: number }[]): string[] {
  const fmt = (v: number | undefined, unit: string) =>
    v === undefined ? 'no data' : `${Number.isInteger(v) ? v : v.toFixed(v < 10 ? 2 : 0)}${unit}`;
  const width = Math.max(...rows.map((r) => r.headline.name.length));
  return [
    `${'series'.padEnd(width)}  ${'peak'.padStart(10)}  ${'last'.padStart(10)}  PromQL`,
    ...rows.map(
      ({ headline: h, peak, last }) =>
        `${h.name.padEnd(width)}  ${fmt(peak, h.unit).padStart(10)}  ${fmt(last, h.unit).padStart(10)}  ${h.expr}`,
    ),
  ];
}

/** Queries the headlines over [start, end] (seconds) from the demo's Prometheus. */
export async function scrapedHeadlines(
  prometheus: PrometheusServer,
  bot: { namespace: string; name: string },
  start: number,
  end: number,
): Promise<string[]> {
  const step = prometheus.scrapeIntervalSeconds;
  const rows = await Promise.all(
    headlines(bot, 4 * step).map(async (headline) => ({
      headline,
      ...peakAndLast(await prometheus.queryRange(headline.expr, start, end, step)),
    })),
  );
  return headlineTable(rows);
}
