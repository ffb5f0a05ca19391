// The demo's closing table: the headline series Prometheus scraped during the scenario (shards
// READY, events/s, backlog, worker replicas, interaction p99), each as its peak and its last
// value (the last window that had data: interactions stop before the end), with the PromQL
// behind it so a reader can paste it into Prometheus' UI. The demo's plots (demo/report.ts)
// draw from the same queries.
import type { PrometheusServer, PromSeries } from '../testenv/index.js';

export interface Headline {
  name: string;
  /** Over the whole scenario at `stepSeconds` resolution. */
  expr: string;
  unit: string;
}

/**
 * An RE2 pattern (whole-string, as label_replace anchors it) of the gateway pods of generation 2 and
 * later, capturing the generation. The gateway's series carry no generation label; the pod name
 * does (operator/rendering/gateway.ts gatewayName: `<bot>-gateway-<ordinal>` for generation 1,
 * `<bot>-gateway-g<N>-<ordinal>` after).
 */
export function laterGenerationPod(botName: string): string {
  return `${botName.replaceAll('.', '[.]')}-gateway-g([0-9]+)-[0-9]+`;
}

/**
 * The PromQL behind the demo's table and plots, for one bot; `rateSeconds` is the window of rates
 * (≥ 4 scrape intervals).
 */
export function demoQueries(bot: { namespace: string; name: string }, rateSeconds: number) {
  const sel = `namespace="${bot.namespace}", bot="${bot.name}"`;
  return {
    // Distinct shards, as ShardwardenShardDown counts them: during a BlueGreen reshard both
    // generations report theirs.
    shardsReady: `count(max by (shard) (shardwarden_gateway_shard_ready{${sel}}) == 1)`,
    // Generation 1 unless the pod's name says another.
    shardsReadyByGeneration: `sum by (generation) (label_replace(label_replace(shardwarden_gateway_shard_ready{${sel}}, "generation", "1", "pod", ".*"), "generation", "$1", "pod", "${laterGenerationPod(bot.name)}"))`,
    eventsPerSecond: `sum(rate(shardwarden_gateway_dispatches_received_total{${sel}}[${rateSeconds}s]))`,
    backlog: `max(shardwarden_operator_worker_backlog{namespace="${bot.namespace}", name="${bot.name}"})`,
    workerReplicas: `max(shardwarden_bot_worker_replicas{${sel}})`,
    // Over the buckets as counted since each worker started, not a rate: the demo's few
    // interactions often all land before a worker's first scrape, and a rate sees no increase.
    interactionP99: `histogram_quantile(0.99, sum by (le) (shardwarden_worker_interaction_response_seconds_bucket{${sel}})) * 1000`,
  };
}

/** The headline queries for one bot; `rate` is the window of rates (≥ 4 scrape intervals). */
export function headlines(bot: { namespace: string; name: string }, rateSeconds: number): Headline[] {
  const q = demoQueries(bot, rateSeconds);
  return [
    { name: 'shards READY', expr: q.shardsReady, unit: '' },
    { name: 'events received/s', expr: q.eventsPerSecond, unit: '/s' },
    { name: 'backlog (jobs)', expr: q.backlog, unit: '' },
    { name: 'worker replicas', expr: q.workerReplicas, unit: '' },
    { name: 'interaction p99', expr: q.interactionP99, unit: ' ms' },
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
