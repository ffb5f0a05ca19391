import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { Registry, Counter } from 'prom-client';
import { startPrometheus, waitUntil, type PrometheusServer } from '../../testenv/index.js';

describe('Prometheus from Debian', () => {
  let prometheus: PrometheusServer;
  let server: Server;
  const registry = new Registry();
  const jobs = new Counter({
    name: 'smoke_jobs_total',
    help: 'jobs',
    labelNames: ['queue'],
    registers: [registry],
  });
  beforeAll(async () => {
    server = createServer((_, res) => {
      void registry.metrics().then((text) => res.end(text));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    prometheus = await startPrometheus({ scrapeIntervalSeconds: 1 });
  });
  afterAll(async () => {
    await prometheus?.close();
    server?.close();
  });

  test('scrapes the targets it is given, with their labels; series keep their own labels', async () => {
    jobs.inc({ queue: 'events' }, 3);
    const { port } = server.address() as { port: number };
    prometheus.setTargets([
      { address: `127.0.0.1:${port}`, labels: { namespace: 'bots', pod: 'p-0', queue: 'target' } },
    ]);
    await waitUntil(
      'the series to be scraped',
      async () => (await prometheus.query('smoke_jobs_total')).length > 0,
      {
        timeoutMs: 60_000,
        intervalMs: 500,
      },
    );
    const [series] = await prometheus.query('smoke_jobs_total');
    expect(series!.metric).toMatchObject({
      namespace: 'bots',
      pod: 'p-0',
      queue: 'events',
      job: 'shardwarden',
    });
    expect(series!.values[0]![1]).toBe('3');
    expect(await prometheus.labelValues('pod', 'smoke_jobs_total{namespace=~"bots"}')).toEqual(['p-0']);
  });

  test('a query Prometheus cannot parse is an error with its message', async () => {
    await expect(prometheus.query('sum(smoke_jobs_total')).rejects.toThrow(
      /bad_data.*unclosed left parenthesis/,
    );
  });

  test('close() stops it and removes its folder', async () => {
    const extra = await startPrometheus();
    const folder = extra.process.logFile.replace(/\/prometheus\.log$/, '');
    await extra.close();
    expect(extra.process.exited()).toBe(true);
    expect(existsSync(folder)).toBe(process.env.SHARDWARDEN_KEEP_TMP === '1');
  });
});
