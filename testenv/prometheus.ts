// Prometheus from Debian's `prometheus` package (which also brings promtool): a throwaway server
// scraping the targets a test or the demo names, and the promtool binary for rule tests.
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDebianPackage, requireExecutable } from './debian-packages.js';
import { freePort } from './ports.js';
import { startProcess, waitUntil, type ManagedProcess } from './processes.js';
import { makeTempDir } from './tempdir.js';

/** promtool, from SHARDWARDEN_PROMTOOL or Debian's prometheus package. */
export function promtoolBinary(): string {
  return process.env.SHARDWARDEN_PROMTOOL
    ? requireExecutable('SHARDWARDEN_PROMTOOL', process.env.SHARDWARDEN_PROMTOOL)
    : ensureDebianPackage('promtool', 'prometheus');
}

function prometheusBinary(): string {
  return process.env.SHARDWARDEN_PROMETHEUS
    ? requireExecutable('SHARDWARDEN_PROMETHEUS', process.env.SHARDWARDEN_PROMETHEUS)
    : ensureDebianPackage('prometheus', 'prometheus');
}

/** One scrape target: `host:port` of a /metrics endpoint and the target labels its series get. */
export interface ScrapeTarget {
  address: string;
  labels: Record<string, string>;
}

/** One series of an instant or range query. */
export interface PromSeries {
  metric: Record<string, string>;
  /** Instant query: one [time, value]; range query: all of them. */
  values: [number, string][];
}

export interface PrometheusServer {
  /** http://127.0.0.1:port, the UI and the HTTP API. */
  readonly url: string;
  readonly scrapeIntervalSeconds: number;
  readonly process: ManagedProcess;
  /** Replaces the scrape targets (a file_sd file Prometheus watches; picked up within seconds). */
  setTargets(targets: ScrapeTarget[]): void;
  /** Instant query at `time` (seconds, default now); throws Prometheus' error for a bad query. */
  query(expr: string, time?: number): Promise<PromSeries[]>;
  /** Range query over [start, end] (seconds) with `stepSeconds`. */
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<PromSeries[]>;
  /** The values of a label over the series `match` selects (what Grafana's label_values() shows). */
  labelValues(label: string, match: string): Promise<string[]>;
  /** Stops the server and removes its folder (data, config, log). */
  close(): Promise<void>;
}

/** prometheus.yml: one job reading its targets from the file_sd file; series keep their own labels. */
export function prometheusConfig(targetsFile: string, scrapeIntervalSeconds: number): string {
  return JSON.stringify({
    global: {
      scrape_interval: `${scrapeIntervalSeconds}s`,
      scrape_timeout: `${scrapeIntervalSeconds}s`,
      evaluation_interval: `${scrapeIntervalSeconds}s`,
    },
    scrape_configs: [
      {
        job_name: 'shardwarden',
        // As the chart's ServiceMonitor and PodMonitor: a series' own label wins over the target's.
        honor_labels: true,
        file_sd_configs: [{ files: [targetsFile], refresh_interval: '1s' }],
      },
    ],
  });
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as { status: string; data?: T; error?: string; errorType?: string };
  if (body.status !== 'success') throw new Error(`Prometheus ${body.errorType ?? res.status}: ${body.error}`);
  return body.data as T;
}

/** A Prometheus on a free loopback port with its data in a temp folder, scraping every `scrapeIntervalSeconds`. */
export async function startPrometheus(
  options: { scrapeIntervalSeconds?: number } = {},
): Promise<PrometheusServer> {
  const scrapeIntervalSeconds = options.scrapeIntervalSeconds ?? 1;
  const binary = prometheusBinary();
  const dir = makeTempDir('prometheus');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const targetsFile = join(dir.path, 'targets.json');
  const setTargets = (targets: ScrapeTarget[]) => {
    // Written whole, then renamed: Prometheus never reads a half-written file.
    writeFileSync(
      `${targetsFile}.tmp`,
      JSON.stringify(targets.map((t) => ({ targets: [t.address], labels: t.labels }))),
    );
    renameSync(`${targetsFile}.tmp`, targetsFile);
  };
  setTargets([]);
  const configFile = join(dir.path, 'prometheus.yml');
  writeFileSync(configFile, prometheusConfig(targetsFile, scrapeIntervalSeconds));
  const proc = startProcess(
    'prometheus',
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir.path, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    join(dir.path, 'prometheus.log'),
  );
  try {
    await waitUntil('prometheus /-/ready', async () => (await fetch(`${url}/-/ready`)).ok, {
      process: proc,
      timeoutMs: 60_000,
      intervalMs: 200,
    });
  } catch (err) {
    await proc.stop();
    dir.remove();
    throw err;
  }
  const vector = (data: {
    resultType: string;
    result: { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[];
  }) => data.result.map((r) => ({ metric: r.metric, values: r.values ?? (r.value ? [r.value] : []) }));
  return {
    url,
    scrapeIntervalSeconds,
    process: proc,
    setTargets,
    async query(expr, time) {
      const params = new URLSearchParams({
        query: expr,
        ...(time === undefined ? {} : { time: String(time) }),
      });
      return vector(await api(`${url}/api/v1/query?${params}`));
    },
    async queryRange(expr, start, end, stepSeconds) {
      // Points fall at start + k·step: start a little earlier so the last one is `end` itself
      // (otherwise "the last value" can be up to a step older than what was just seen).
      const alignedStart = end - Math.ceil((end - start) / stepSeconds) * stepSeconds;
      const params = new URLSearchParams({
        query: expr,
        start: String(alignedStart),
        end: String(end),
        step: String(stepSeconds),
      });
      return vector(await api(`${url}/api/v1/query_range?${params}`));
    },
    async labelValues(label, match) {
      const params = new URLSearchParams({ 'match[]': match });
      return api<string[]>(`${url}/api/v1/label/${encodeURIComponent(label)}/values?${params}`);
    },
    async close() {
      await proc.stop();
      dir.remove();
    },
  };
}
