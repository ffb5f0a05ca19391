// The Helm chart: lint and template for each documented values combination, the rendered
// objects (and the examples in manifests/examples) accepted by a real apiserver (server-side
// dry run), values.schema.json covering every value, and its CRD kept identical to crds/.
import { readFileSync, readdirSync } from 'node:fs';
import { parse } from 'yaml';
import { CRD_PATH } from '../../operator/api/codegen.js';
import { startControlPlane, type ControlPlane } from '../../testenv/index.js';
import { installThirdPartyCrds } from './fixtures.js';
import { CHART, RELEASE_NAMESPACE, helm, renderChart } from './helm.js';

const MONITORING = [
  '--set',
  'metrics.serviceMonitor.enabled=true',
  '--set',
  'metrics.podMonitor.enabled=true',
  '--set',
  'prometheusRule.enabled=true',
];
const DASHBOARDS = ['--set', 'dashboards.enabled=true'];
// The combinations docs/install.md documents.
const combinations: [string, string[], string[]][] = [
  ['defaults (cluster-wide)', [], ['Deployment', 'ClusterRole', 'PodDisruptionBudget']],
  ['single namespace', ['--set', 'watchNamespaces={bots}'], ['Role', 'RoleBinding']],
  [
    'several namespaces, no PDB, one replica',
    [
      '--set',
      'watchNamespaces={bots,more-bots}',
      '--set',
      'podDisruptionBudget.enabled=false',
      '--set',
      'replicaCount=1',
    ],
    ['Role'],
  ],
  ['monitoring on', MONITORING, ['ServiceMonitor', 'PodMonitor', 'PrometheusRule']],
  ['dashboards on', DASHBOARDS, ['ConfigMap']],
  [
    'single namespace, monitoring and dashboards on',
    ['--set', 'watchNamespaces={bots}', ...MONITORING, ...DASHBOARDS],
    ['Role', 'ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'ConfigMap'],
  ],
];

interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  description?: string;
}

describe('Helm chart', () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await startControlPlane();
    await cp.applyCrds(CRD_PATH);
    await installThirdPartyCrds(cp);
    for (const ns of [RELEASE_NAMESPACE, 'bots', 'more-bots']) cp.kubectl(['create', 'namespace', ns]);
  }, 120_000);
  afterAll(() => cp?.stop());

  test('the chart carries the same CRD as crds/', () => {
    expect(readFileSync(`${CHART}/crds/shardwarden.io_discordbots.yaml`, 'utf8')).toBe(
      readFileSync(CRD_PATH, 'utf8'),
    );
  });

  test.each(combinations)(
    '%s: helm lint is clean and the rendered objects pass a server-side dry run',
    (_name, values, kinds) => {
      const lint = helm(['lint', '--strict', CHART, ...values]);
      expect(lint).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(lint).not.toContain('[WARNING]');
      expect(lint).not.toContain('[ERROR]');
      const { text, docs } = renderChart(values);
      expect(docs.map((d) => d.kind)).toEqual(expect.arrayContaining(kinds));
      const out = cp.kubectl(['apply', '--dry-run=server', '-f', '-'], text);
      expect(out).toContain('deployment.apps/sw-shardwarden created (server dry run)');
      for (const d of docs) expect(out).toContain(`/${d.metadata.name} created (server dry run)`);
      expect(text).toContain('readOnlyRootFilesystem: true');
      expect(text).toContain('runAsNonRoot: true');
    },
  );

  test('the examples in manifests/examples pass a server-side dry run', () => {
    for (const file of readdirSync('manifests/examples')) {
      const out = cp.kubectl(['apply', '--dry-run=server', '-n', 'bots', '-f', `manifests/examples/${file}`]);
      expect(out).toMatch(/discordbot\.shardwarden\.io\/[-a-z]+ created \(server dry run\)/);
    }
  });

  test('dashboards: one ConfigMap per JSON file, with the configured sidecar label and namespace', () => {
    const { docs } = renderChart([
      ...DASHBOARDS,
      '--set',
      'dashboards.label.key=grafana_dashboard_shardwarden',
      '--set',
      'dashboards.label.value=yes',
      '--set',
      'dashboards.namespace=monitoring',
    ]);
    const maps = docs.filter((d) => d.kind === 'ConfigMap');
    expect(maps.map((m) => m.metadata.name).sort()).toEqual([
      'sw-shardwarden-dashboard-gateway',
      'sw-shardwarden-dashboard-operator',
      'sw-shardwarden-dashboard-workers',
    ]);
    for (const m of maps) {
      expect(m.metadata.namespace).toBe('monitoring');
      expect(m.metadata.labels!.grafana_dashboard_shardwarden).toBe('yes');
      const entries = Object.entries(m.data as Record<string, string>);
      expect(entries).toHaveLength(1);
      const [key, json] = entries[0]!;
      const name = key.replace(/^shardwarden-|\.json$/g, '');
      expect(JSON.parse(json)).toEqual(JSON.parse(readFileSync(`${CHART}/dashboards/${name}.json`, 'utf8')));
    }
    // The default label is the one Grafana's sidecar (kube-prometheus-stack) looks for.
    const defaults = renderChart(DASHBOARDS).docs.filter((d) => d.kind === 'ConfigMap');
    for (const m of defaults) expect(m.metadata.labels!.grafana_dashboard).toBe('1');
  });

  test('the PodMonitor scrapes the bots of the watched namespaces, labelled by bot', () => {
    const pm = (values: string[]) =>
      renderChart([...MONITORING, ...values]).docs.find((d) => d.kind === 'PodMonitor')!;
    expect((pm([]).spec as { namespaceSelector: unknown }).namespaceSelector).toEqual({ any: true });
    const scoped = pm(['--set', 'watchNamespaces={bots}']).spec as {
      namespaceSelector: unknown;
      podMetricsEndpoints: { port: string; relabelings: { targetLabel: string }[] }[];
    };
    expect(scoped.namespaceSelector).toEqual({ matchNames: ['bots'] });
    expect(scoped.podMetricsEndpoints[0]!.port).toBe('http');
    expect(scoped.podMetricsEndpoints[0]!.relabelings.map((r) => r.targetLabel)).toEqual([
      'bot',
      'component',
    ]);
  });

  test('values.schema.json describes every value in values.yaml, and nothing else is accepted', () => {
    const schema = JSON.parse(readFileSync(`${CHART}/values.schema.json`, 'utf8')) as JsonSchema;
    const values = parse(readFileSync(`${CHART}/values.yaml`, 'utf8')) as Record<string, unknown>;
    const uncovered: string[] = [];
    const walk = (value: unknown, node: JsonSchema | undefined, path: string) => {
      if (!node || !node.description) return void uncovered.push(path);
      if (node.type === 'object' && node.properties) {
        if (node.additionalProperties !== false) uncovered.push(`${path} (open to unknown keys)`);
        for (const [k, v] of Object.entries(value as Record<string, unknown>))
          walk(v, node.properties[k], `${path}.${k}`);
      }
    };
    for (const [k, v] of Object.entries(values)) walk(v, schema.properties![k], k);
    expect(uncovered).toEqual([]);
    // additionalProperties: false means a misspelt value is refused, naming it.
    let err = '';
    try {
      helm(['template', 'sw', CHART, '--set', 'metrics.podMonitor.enabeld=true']);
    } catch (e) {
      err = String((e as { stderr?: string }).stderr);
    }
    expect(err).toContain("at '/metrics/podMonitor': additional properties 'enabeld' not allowed");
  });

  test('by default (rbac.keda=false) the operator only reads Secrets and gets no keda.sh objects; rbac.keda=true grants them', () => {
    type Rules = { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const rules = (values: string[]) =>
      renderChart(values).docs.find((d) => d.kind === 'ClusterRole')!.rules as Rules;
    const secretVerbs = (r: Rules) => r.find((x) => x.resources.includes('secrets'))!.verbs;
    const keda = rules(['--set', 'rbac.keda=true']);
    expect(secretVerbs(keda)).toEqual(['get', 'list', 'watch', 'create', 'patch', 'delete']);
    expect(keda.some((x) => x.apiGroups.includes('keda.sh'))).toBe(true);
    const strict = rules([]);
    expect(secretVerbs(strict)).toEqual(['get', 'list', 'watch']);
    expect(strict.some((x) => x.apiGroups.includes('keda.sh'))).toBe(false);
  });

  test('values outside the schema are refused naming the value', () => {
    let err = '';
    try {
      helm(['template', 'sw', CHART, '--set', 'replicaCount=0']);
    } catch (e) {
      err = String((e as { stderr?: string }).stderr);
    }
    expect(err).toContain("at '/replicaCount': minimum: got 0, want 1");
  });
});
