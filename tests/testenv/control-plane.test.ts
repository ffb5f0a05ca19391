import { ApiextensionsV1Api, AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeBinaryDir, startControlPlane, waitUntil, type ControlPlane } from '../../testenv/index.js';

describe('control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)', () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await startControlPlane({ kwokNodes: 1 });
  }, 180_000);
  afterAll(async () => {
    await cp?.stop();
  });

  test('a CRD created on the apiserver becomes Established', async () => {
    const api = cp.kubeConfig().makeApiClient(ApiextensionsV1Api);
    await api.createCustomResourceDefinition({
      body: {
        metadata: { name: 'widgets.smoke.shardwarden.io' },
        spec: {
          group: 'smoke.shardwarden.io',
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
            },
          ],
        },
      },
    });
    await waitUntil('CRD Established', async () => {
      const crd = await api.readCustomResourceDefinition({ name: 'widgets.smoke.shardwarden.io' });
      return !!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
    // Established means the new resource is actually served.
    expect(cp.kubectl(['get', 'widgets', '-A', '-o', 'name'])).toBe('');
  });

  test('a StatefulSet of 2 replicas gets 2 Ready pods on a kwok node', async () => {
    const kc = cp.kubeConfig();
    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const labels = { app: 'smoke' };
    await apps.createNamespacedStatefulSet({
      namespace: 'default',
      body: {
        metadata: { name: 'smoke' },
        spec: {
          replicas: 2,
          serviceName: 'smoke',
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'main', image: 'example.invalid/smoke:1' }] },
          },
        },
      },
    });
    await waitUntil(
      '2 ready replicas',
      async () =>
        (await apps.readNamespacedStatefulSet({ name: 'smoke', namespace: 'default' })).status
          ?.readyReplicas === 2,
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=smoke' });
    expect(pods.items.map((p) => p.metadata?.name).sort()).toEqual(['smoke-0', 'smoke-1']);
    for (const pod of pods.items) {
      expect(pod.spec?.nodeName).toBe('kwok-node-0');
      expect(pod.status?.phase).toBe('Running');
      expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    }
  });

  test('the apiserver can be restarted and serves the same data', async () => {
    await cp.restartApiserver();
    expect(cp.kubectl(['get', 'statefulset', 'smoke', '-o', 'jsonpath={.spec.replicas}'])).toBe('2');
  });
});

describe('missing Kubernetes binaries', () => {
  test('fail loudly and name the folder and the binary', () => {
    const empty = mkdtempSync(join(tmpdir(), 'shardwarden-empty-assets-'));
    const saved = process.env.SHARDWARDEN_ASSETS;
    process.env.SHARDWARDEN_ASSETS = empty;
    try {
      expect(() => kubeBinaryDir()).toThrow(`SHARDWARDEN_ASSETS=${empty} has no executable 'etcd'`);
    } finally {
      if (saved === undefined) delete process.env.SHARDWARDEN_ASSETS;
      else process.env.SHARDWARDEN_ASSETS = saved;
    }
  });
});
