// The Helm chart: lint and template for each documented values combination, the rendered
// objects accepted by a real apiserver (server-side dry run), and its CRD kept identical to crds/.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CRD_PATH } from '../../operator/api/codegen.js';
import { kubeBinary, startControlPlane, type ControlPlane } from '../../testenv/index.js';

const CHART = 'charts/shardwarden';
const combinations: [string, string[]][] = [
  ['defaults (cluster-wide)', []],
  ['single namespace', ['--set', 'watchNamespaces={bots}']],
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
  ],
  ['ServiceMonitor', ['--set', 'metrics.serviceMonitor.enabled=true']],
];
const helm = (args: string[]) =>
  execFileSync(kubeBinary('helm'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('Helm chart', () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await startControlPlane();
    await cp.applyCrds(CRD_PATH);
    // The ServiceMonitor CRD as the Prometheus operator would install it (schema not needed here).
    cp.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: 'servicemonitors.monitoring.coreos.com' },
        spec: {
          group: 'monitoring.coreos.com',
          scope: 'Namespaced',
          names: { plural: 'servicemonitors', kind: 'ServiceMonitor' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            },
          ],
        },
      }),
    );
    cp.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/servicemonitors.monitoring.coreos.com',
    ]);
    for (const ns of ['shardwarden-system', 'bots', 'more-bots']) cp.kubectl(['create', 'namespace', ns]);
  }, 120_000);
  afterAll(() => cp?.stop());

  test('the chart carries the same CRD as crds/', () => {
    expect(readFileSync(`${CHART}/crds/shardwarden.io_discordbots.yaml`, 'utf8')).toBe(
      readFileSync(CRD_PATH, 'utf8'),
    );
  });

  test.each(combinations)(
    '%s: helm lint is clean and the rendered objects pass a server-side dry run',
    (_name, values) => {
      const lint = helm(['lint', '--strict', CHART, ...values]);
      expect(lint).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(lint).not.toContain('[WARNING]');
      const rendered = helm(['template', 'sw', CHART, '--namespace', 'shardwarden-system', ...values]);
      const out = cp.kubectl(['apply', '--dry-run=server', '-f', '-'], rendered);
      expect(out).toContain('deployment.apps/sw-shardwarden created (server dry run)');
      expect(rendered).toContain('readOnlyRootFilesystem: true');
      expect(rendered).toContain('runAsNonRoot: true');
    },
  );

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
