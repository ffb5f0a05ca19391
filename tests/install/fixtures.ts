// Stand-ins for third-party CRDs (Prometheus operator, KEDA) so the apiserver accepts the
// chart's monitoring objects and the KEDA example. Their schemas are not checked here.
import type { ControlPlane } from '../../testenv/index.js';

const THIRD_PARTY: [group: string, kind: string, plural: string, version: string][] = [
  ['monitoring.coreos.com', 'ServiceMonitor', 'servicemonitors', 'v1'],
  ['monitoring.coreos.com', 'PodMonitor', 'podmonitors', 'v1'],
  ['monitoring.coreos.com', 'PrometheusRule', 'prometheusrules', 'v1'],
  ['keda.sh', 'ScaledObject', 'scaledobjects', 'v1alpha1'],
  ['keda.sh', 'TriggerAuthentication', 'triggerauthentications', 'v1alpha1'],
];

export async function installThirdPartyCrds(cp: ControlPlane): Promise<void> {
  const crds = THIRD_PARTY.map(([group, kind, plural, version]) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, kind },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  }));
  cp.kubectl(['apply', '-f', '-'], crds.map((c) => JSON.stringify(c)).join('\n'));
  await cp.waitForCrds(...crds.map((c) => `crd/${c.metadata.name}`));
}
