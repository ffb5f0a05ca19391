// Dashboards and alerts: every metric they query is one the code registers, every alert links
// its own runbook entry, and the dashboards are well-formed Grafana JSON.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CHART, renderChart } from './helm.js';

const SOURCE_DIRS = ['operator', 'bot'];
const DASHBOARDS = ['operator', 'gateway', 'workers'];
const ISSUE_ALERTS = [
  'ShardwardenShardDown',
  'ShardwardenHeartbeatLatencyHigh',
  'ShardwardenSessionStartBudgetLow',
  'ShardwardenBacklogGrowing',
  'ShardwardenDiscordRateLimited',
  'ShardwardenReconcileErrors',
  'ShardwardenNoOperatorLeader',
];

interface Rule {
  alert: string;
  expr: string;
  annotations: Record<string, string>;
  labels: Record<string, string>;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string }[];
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Metric names registered in the TypeScript sources (`name: 'shardwarden_...'`). */
function registeredMetrics(): Set<string> {
  const names = new Set<string>();
  for (const file of SOURCE_DIRS.flatMap(tsFiles))
    for (const m of readFileSync(file, 'utf8').matchAll(/\bname:\s*['"`](shardwarden_[a-z0-9_]+)['"`]/g))
      names.add(m[1]!);
  return names;
}

/** Metric names a PromQL text uses; a histogram's _bucket/_sum/_count series count as the histogram. */
function metricsIn(promql: string, registered: Set<string>): string[] {
  return [...promql.matchAll(/\bshardwarden_[a-z0-9_]+/g)].map(([name]) => {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return base !== name && registered.has(base) ? base : name;
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map(([, h]) =>
      h!
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    ),
  );
}

const rules = (): Rule[] => {
  const { docs } = renderChart(
    ['--set', 'prometheusRule.enabled=true'],
    ['--show-only', 'templates/prometheusrule.yaml'],
  );
  const spec = docs[0]!.spec as { groups: { rules: Rule[] }[] };
  return spec.groups.flatMap((g) => g.rules);
};
const dashboard = (name: string) =>
  JSON.parse(readFileSync(`${CHART}/dashboards/${name}.json`, 'utf8')) as {
    uid: string;
    title: string;
    panels: Panel[];
    templating: { list: { name: string }[] };
  };

describe('dashboards and alerts', () => {
  const registered = registeredMetrics();

  test('the source scan finds the operator and gateway metrics', () => {
    // Guards the scan itself: if it found nothing, every metric would look missing.
    expect(registered).toContain('shardwarden_operator_reconcile_total');
    expect(registered).toContain('shardwarden_gateway_shard_ready');
  });

  test('every metric the dashboards and alerts query is registered by the code', () => {
    const used = new Map<string, Set<string>>();
    const note = (metric: string, where: string) =>
      used.set(metric, (used.get(metric) ?? new Set()).add(where));
    for (const name of DASHBOARDS)
      for (const m of metricsIn(readFileSync(`${CHART}/dashboards/${name}.json`, 'utf8'), registered))
        note(m, `dashboards/${name}.json`);
    for (const rule of rules())
      for (const m of metricsIn(rule.expr, registered)) note(m, `alert ${rule.alert}`);
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used]
      .filter(([metric]) => !registered.has(metric))
      .map(([metric, where]) => `${metric} (used by ${[...where].join(', ')})`);
    expect(missing).toEqual([]);
  });

  test('the alerts the issue asks for exist, each with severity, summary and its own runbook entry', () => {
    const runbooks = readFileSync('docs/runbooks.md', 'utf8');
    const headings = anchors(runbooks);
    const all = rules();
    expect(all.map((r) => r.alert)).toEqual(expect.arrayContaining(ISSUE_ALERTS));
    for (const rule of all) {
      expect(['warning', 'critical']).toContain(rule.labels.severity);
      expect(rule.annotations.summary).toBeTruthy();
      const [base, anchor] = rule.annotations.runbook_url!.split('#');
      expect(base).toBe('https://github.com/shardwarden/shardwarden/blob/main/docs/runbooks.md');
      expect(anchor).toBe(rule.alert.toLowerCase());
      expect({ alert: rule.alert, hasRunbookSection: headings.has(anchor!) }).toEqual({
        alert: rule.alert,
        hasRunbookSection: true,
      });
    }
  });

  test('alert thresholds come from the values', () => {
    const { text } = renderChart(
      ['--set', 'prometheusRule.enabled=true', '--set-json', 'prometheusRule.heartbeatLatencySeconds=2.5'],
      [
        '--set',
        'prometheusRule.runbookBaseUrl=https://wiki.example/runbooks',
        '--show-only',
        'templates/prometheusrule.yaml',
      ],
    );
    expect(text).toContain('(shardwarden_gateway_heartbeat_latency_seconds) > 2.5');
    expect(text).toContain('runbook_url: "https://wiki.example/runbooks#shardwardensharddown"');
  });

  test.each(DASHBOARDS)(
    'dashboard %s: unique uid and panel ids, bot and namespace variables, queries on the data source variable',
    (name) => {
      const d = dashboard(name);
      expect(d.uid).toBe(`shardwarden-${name}`);
      const ids = d.panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace', 'bot']);
      const queries = d.panels.filter((p) => p.type !== 'row');
      expect(queries.length).toBeGreaterThan(5);
      for (const p of queries) {
        expect(p.targets?.length).toBeGreaterThan(0);
        expect(JSON.stringify(p)).toContain('"uid":"${datasource}"');
      }
    },
  );

  test('each dashboard shows what the issue lists', () => {
    const titles = (name: string) =>
      dashboard(name)
        .panels.map((p) => p.title)
        .join(' | ');
    expect(titles('operator')).toMatch(
      /Reconciles.*Reconcile errors.*Shards: planned.*Session starts remaining/,
    );
    expect(titles('gateway')).toMatch(
      /Shards READY.*Heartbeat latency.*Received by type.*Dropped.*identifies vs\. resumes.*Buffer depth/,
    );
    expect(titles('workers')).toMatch(
      /Backlog.*Throughput.*Job duration.*Failed jobs|Backlog.*Throughput.*Failed jobs.*Job duration/,
    );
    expect(titles('workers')).toMatch(/429s.*RPC failovers/);
  });
});
