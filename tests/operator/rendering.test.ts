// The objects one DiscordBot owns, rendered without a cluster: which Services a bot gets.
import { customResourceDefinition } from '../../operator/api/v1alpha1/schema.js';
import type { DiscordBot } from '../../operator/api/v1alpha1/types.js';
import {
  mustRecreate,
  renderDesiredObjects,
  unwantedObjects,
  type RenderedObject,
} from '../../operator/rendering/desired-objects.js';

interface Schema {
  default?: unknown;
  properties?: Record<string, Schema>;
}

/** What the apiserver's structural defaulting does: a default per missing field, level by level. */
function withDefaults(schema: Schema, value: unknown): unknown {
  const v = value === undefined && schema.default !== undefined ? structuredClone(schema.default) : value;
  if (!schema.properties || typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  for (const [key, sub] of Object.entries(schema.properties)) {
    const next = withDefaults(sub, out[key]);
    if (next !== undefined) out[key] = next;
  }
  return out;
}

function bot(worker: Record<string, unknown> = {}): DiscordBot {
  const root = customResourceDefinition().spec.versions[0]!.schema.openAPIV3Schema as Schema;
  const spec = withDefaults(root.properties!.spec!, {
    image: 'registry.example/sietch:1',
    tokenSecretRef: { name: 'sietch-discord' },
    redis: { urlSecretRef: { name: 'sietch-redis' } },
    worker,
  });
  return {
    apiVersion: 'shardwarden.io/v1alpha1',
    kind: 'DiscordBot',
    metadata: { name: 'sietch', namespace: 'bots', uid: 'uid-1', generation: 1 },
    spec: spec as DiscordBot['spec'],
  };
}

function services(b: DiscordBot): RenderedObject[] {
  const plan = { shards: 1, shardsPerPod: 1, pods: 1, clustersPerPod: 1, maxConcurrency: 1 };
  const active = { generation: 1, plan };
  return renderDesiredObjects({
    bot: b,
    active,
    gateways: [active],
    discordApiUrl: 'http://discord.test',
    secretsChecksums: { gateway: 'x', worker: 'x' },
  }).filter((o) => o.kind === 'Service');
}

const clusterIP = (o: RenderedObject) => (o.spec as { clusterIP?: string }).clusterIP;

describe('the Services a DiscordBot gets', () => {
  test('without worker.publicUrl: the gateway and worker metrics Services, both headless', () => {
    const svcs = services(bot());
    expect(svcs.map((s) => [s.metadata.name, clusterIP(s)])).toEqual([
      ['sietch-gateway', 'None'],
      ['sietch-worker-metrics', 'None'],
    ]);
    expect(unwantedObjects(bot())).toEqual([
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'sietch-worker-public', namespace: 'bots' } },
    ]);
  });

  test('with worker.publicUrl: also the public Service, with a virtual IP for an Ingress', () => {
    const b = bot({ publicUrl: 'https://sietch.example' });
    const svcs = services(b);
    expect(svcs.map((s) => s.metadata.name)).toEqual([
      'sietch-gateway',
      'sietch-worker-metrics',
      'sietch-worker-public',
    ]);
    const pub = svcs.find((s) => s.metadata.name === 'sietch-worker-public')!;
    expect(clusterIP(pub)).toBeUndefined();
    expect(pub.spec).toMatchObject({ ports: [{ port: 80, targetPort: 'public' }] });
    expect(unwantedObjects(b)).toEqual([]);
  });

  test('a live Service with a virtual IP is recreated to become headless; a matching one is applied', () => {
    const metrics = services(bot()).find((s) => s.metadata.name === 'sietch-worker-metrics')!;
    expect(mustRecreate(metrics, { spec: { clusterIP: '10.0.0.12' } } as never)).toBe(true);
    expect(mustRecreate(metrics, { spec: { clusterIP: 'None' } } as never)).toBe(false);
    expect(mustRecreate(metrics, undefined)).toBe(false);
    const pub = services(bot({ publicUrl: 'https://x.example' })).find(
      (s) => s.metadata.name === 'sietch-worker-public',
    )!;
    // The apiserver assigns the public Service's IP; it is never a reason to recreate it.
    expect(mustRecreate(pub, { spec: { clusterIP: '10.0.0.13' } } as never)).toBe(false);
  });
});
