// The demo's picture: an HTML page (demo/svg-plot.ts) with what the scenario did over time, from
// Prometheus range queries over the same window as the headline table: the backlog against the
// worker replicas it scaled, and the shards READY per gateway generation through the reshard.
import { writeFileSync } from 'node:fs';
import type { PrometheusServer, PromSeries } from '../testenv/index.js';
import { demoQueries } from './headline.js';
import { plotPage, type Plot, type PlotSeries } from './svg-plot.js';

/** What the page is drawn from: one range-query result per query of `demoQueries`. */
export interface ReportData {
  bot: { namespace: string; name: string };
  /** Unix seconds. */
  start: number;
  end: number;
  stepSeconds: number;
  backlog: PromSeries[];
  workerReplicas: PromSeries[];
  shardsReadyByGeneration: PromSeries[];
  shardsReady: PromSeries[];
}

/** The queries the page needs, by the name `ReportData` keeps their result under. */
export const REPORT_QUERIES = [
  'backlog',
  'workerReplicas',
  'shardsReadyByGeneration',
  'shardsReady',
] as const;

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];

const points = (series: PromSeries | undefined): [number, number][] =>
  (series?.values ?? []).map(([t, v]) => [t, Number(v)]);

/** The two plots, from the range-query results. */
export function demoPlots(data: ReportData): Plot[] {
  const q = demoQueries(data.bot, 4 * data.stepSeconds);
  const range = { start: data.start, end: data.end, stepSeconds: data.stepSeconds };
  const generations = [...data.shardsReadyByGeneration].sort(
    (a, b) => Number(a.metric.generation) - Number(b.metric.generation),
  );
  const byGeneration: PlotSeries[] = generations.map((s, i) => ({
    name: `generation ${s.metric.generation ?? '?'}`,
    color: COLORS[(i + 2) % COLORS.length]!,
    points: points(s),
  }));
  return [
    {
      title: 'Backlog and worker replicas',
      description:
        'The burst fills the BullMQ queue; the Builtin autoscaler adds workers while the backlog is above its target per worker, and removes them once it has drained and the scale-down window has passed.',
      ...range,
      axes: { left: 'jobs waiting', right: 'worker replicas' },
      series: [
        { name: 'backlog (jobs)', color: COLORS[0]!, points: points(data.backlog[0]) },
        {
          name: 'worker replicas',
          color: COLORS[1]!,
          points: points(data.workerReplicas[0]),
          axis: 'right',
        },
      ],
      queries: [q.backlog, q.workerReplicas],
    },
    {
      title: 'Shards READY per gateway generation',
      description:
        'During the BlueGreen reshard the new generation identifies its shards beside the old one, which keeps serving until the new one is Ready; the dashed line counts distinct shards READY in either generation.',
      ...range,
      axes: { left: 'shards READY' },
      series: [
        ...byGeneration,
        {
          name: 'distinct shards READY',
          color: '#333333',
          points: points(data.shardsReady[0]),
          dashed: true,
        },
      ],
      queries: [q.shardsReadyByGeneration, q.shardsReady],
    },
  ];
}

/** The page for `data`, titled for the demo. */
export function demoPage(data: ReportData): string {
  return plotPage({
    title: `Shardwarden demo: ${data.bot.namespace}/${data.bot.name}`,
    subtitle: `From the demo's Prometheus, ${new Date(data.start * 1000).toISOString()} to ${new Date(data.end * 1000).toISOString()}, every ${data.stepSeconds} s.`,
    plots: demoPlots(data),
  });
}

/** Queries the demo's Prometheus over [start, end] (seconds) and writes the page to `file`. */
export async function writeDemoPage(
  prometheus: PrometheusServer,
  bot: { namespace: string; name: string },
  start: number,
  end: number,
  file: string,
): Promise<void> {
  const stepSeconds = prometheus.scrapeIntervalSeconds;
  const q = demoQueries(bot, 4 * stepSeconds);
  const results = await Promise.all(
    REPORT_QUERIES.map((name) => prometheus.queryRange(q[name], start, end, stepSeconds)),
  );
  const data = Object.fromEntries(REPORT_QUERIES.map((name, i) => [name, results[i]!])) as Pick<
    ReportData,
    (typeof REPORT_QUERIES)[number]
  >;
  writeFileSync(file, demoPage({ bot, start, end, stepSeconds, ...data }));
}
