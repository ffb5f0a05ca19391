// What the operator's caches keep: only what reconcile reads, and Secret values only for the
// Secrets bots reference, read again only when their resourceVersion moves.
import type { V1Deployment, V1Secret } from '@kubernetes/client-node';
import type { DiscordBot } from '../../operator/api/v1alpha1/types.js';
import { secretMetadata, slimDeployment, slimObject } from '../../operator/controller/cache-transforms.js';
import { referencedSecretNames, SecretValues } from '../../operator/controller/secret-values.js';

const managedFields = [
  {
    manager: 'shardwarden-operator',
    operation: 'Apply',
    fieldsV1: { 'f:spec': { 'f:replicas': {}, 'f:template': {} } },
  },
  { manager: 'kube-controller-manager', operation: 'Update', fieldsV1: { 'f:status': {} } },
];

describe('cache transforms', () => {
  test('objects lose managedFields and the last-applied copy, and keep everything else', () => {
    const obj = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: {
        name: 'a',
        namespace: 'n',
        managedFields,
        annotations: {
          'kubectl.kubernetes.io/last-applied-configuration': '{...}',
          'shardwarden.io/spec-hash': 'h',
        },
        labels: { x: 'y' },
      },
      spec: { replicas: 2 },
      status: { readyReplicas: 1 },
    };
    expect(slimObject(obj)).toEqual({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: {
        name: 'a',
        namespace: 'n',
        annotations: { 'shardwarden.io/spec-hash': 'h' },
        labels: { x: 'y' },
      },
      spec: { replicas: 2 },
      status: { readyReplicas: 1 },
    });
  });

  test("a Deployment keeps only who owns spec.replicas (the worker autoscaler's hand-over reads it)", () => {
    const d: V1Deployment = { metadata: { name: 'w', managedFields }, spec: { replicas: 3 } as never };
    expect(slimDeployment(d).metadata?.managedFields).toEqual([
      { manager: 'shardwarden-operator', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:replicas': {} } } },
    ]);
    expect(slimDeployment({ metadata: { name: 'w', managedFields: [managedFields[1]!] } }).metadata).toEqual({
      name: 'w',
    });
  });

  test('a Secret is cached without its values, with the operator’s own annotations', () => {
    const s: V1Secret = {
      metadata: {
        name: 's',
        namespace: 'n',
        uid: 'u',
        resourceVersion: '7',
        managedFields,
        annotations: {
          'kubectl.kubernetes.io/last-applied-configuration': 'token',
          'shardwarden.io/spec-hash': 'h',
        },
        labels: { a: 'b' },
      },
      data: { token: 'c2VjcmV0' },
      type: 'Opaque',
    };
    expect(secretMetadata(s)).toEqual({
      metadata: {
        name: 's',
        namespace: 'n',
        uid: 'u',
        resourceVersion: '7',
        annotations: { 'shardwarden.io/spec-hash': 'h' },
      },
    });
  });
});

describe('SecretValues', () => {
  const meta = new Map<string, V1Secret>();
  const live = new Map<string, V1Secret>();
  const reads: string[] = [];
  const values = new SecretValues(
    (ns, name) => meta.get(`${ns}/${name}`),
    async (ns, name) => {
      reads.push(name);
      return live.get(`${ns}/${name}`);
    },
  );
  const put = (name: string, rv: string, token: string) => {
    meta.set(`n/${name}`, secretMetadata({ metadata: { name, namespace: 'n', resourceVersion: rv } }));
    live.set(`n/${name}`, { metadata: { name, namespace: 'n', resourceVersion: rv }, data: { token } });
  };

  test('reads a referenced Secret once per resourceVersion', async () => {
    put('tok', '1', 'b25l');
    await values.load('n', ['tok']);
    await values.load('n', ['tok']);
    expect(reads).toEqual(['tok']);
    expect(values.get('n', 'tok')?.data).toEqual({ token: 'b25l' });
    put('tok', '2', 'dHdv');
    await values.load('n', ['tok']);
    expect(reads).toEqual(['tok', 'tok']);
    expect(values.get('n', 'tok')?.data).toEqual({ token: 'dHdv' });
  });

  test('an unreferenced Secret is only its metadata; a missing or deleted one is undefined', async () => {
    put('other', '1', 'eA==');
    expect(values.get('n', 'other')?.data).toBeUndefined();
    expect(values.get('n', 'missing')).toBeUndefined();
    meta.delete('n/tok');
    values.forget('n', 'tok');
    expect(values.get('n', 'tok')).toBeUndefined();
  });

  test('a bot references its token, Redis, database and RPC Secrets, each once', () => {
    const bot = {
      spec: {
        tokenSecretRef: { name: 'a' },
        redis: { urlSecretRef: { name: 'b' } },
        database: { urlSecretRef: { name: 'a' } },
        chain: { rpcUrlsSecretRef: { name: 'c' } },
      },
    } as unknown as DiscordBot;
    expect(referencedSecretNames(bot)).toEqual(['a', 'b', 'c']);
  });
});
