// The objects one DiscordBot owns, rendered without a cluster: which Services a bot gets.
import { ALL_QUEUES } from '../../bot/queues/queue-names.js';
import { ENV, GATEWAY_MALLOC_ARENA_MAX } from '../../bot/runtime-contract.js';
import { customResourceDefinition } from '../../operator/api/v1alpha1/schema.js';
import type { DiscordBot } from '../../operator/api/v1alpha1/types.js';
import {
  mustRecreate,
  renderDesiredObjects,
  unwantedObjects,
  type RenderedObject,
} from '../../operator/rendering/desired-objects.js';
import { staleGatewayObjects } from '../../operator/reconciler/gateway-generations.js';
import {
  renderKedaAuthSecret,
  renderScaledObject,
  renderTriggerAuthentication,
} from '../../operator/rendering/keda.js';

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

function bot(worker: Record<string, unknown> = {}, gateway: Record<string, unknown> = {}): DiscordBot {
  const root = customResourceDefinition().spec.versions[0]!.schema.openAPIV3Schema as Schema;
  const spec = withDefaults(root.properties!.spec!, {
    image: 'registry.example/sietch:1',
    tokenSecretRef: { name: 'sietch-discord' },
    redis: { urlSecretRef: { name: 'sietch-redis' } },
    worker,
    gateway,
  });
  return {
    apiVersion: 'shardwarden.io/v1alpha1',
    kind: 'DiscordBot',
    metadata: { name: 'sietch', namespace: 'bots', uid: 'uid-1', generation: 1 },
    spec: spec as DiscordBot['spec'],
  };
}

/** What a bot owns with these gateway generations running (the first is the active one). */
function rendered(b: DiscordBot, generations = [1]): RenderedObject[] {
  const plan = { shards: 1, shardsPerPod: 1, pods: 1, clustersPerPod: 1, maxConcurrency: 1 };
  const gateways = generations.map((generation) => ({ generation, plan }));
  return renderDesiredObjects({
    bot: b,
    active: gateways[0]!,
    gateways,
    discordApiUrl: 'http://discord.test',
    secretsChecksums: { gateway: 'x', worker: 'x' },
  });
}

const services = (b: DiscordBot) => rendered(b).filter((o) => o.kind === 'Service');

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

describe('availability: disruption budgets and spread over nodes', () => {
  type PodSpec = { topologySpreadConstraints?: unknown[]; nodeSelector?: unknown; tolerations?: unknown };
  const podOf = (objects: RenderedObject[], kind: string, name: string) => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name)!;
    return (o.spec as { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }).template;
  };
  const spread = (matchLabels: Record<string, string>) => [
    {
      maxSkew: 1,
      topologyKey: 'kubernetes.io/hostname',
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels },
    },
  ];
  const gatewaySelector = (generation: number) => ({
    'app.kubernetes.io/instance': 'sietch',
    'app.kubernetes.io/component': 'gateway',
    'shardwarden.io/gateway-generation': String(generation),
  });
  const workerSelector = { 'app.kubernetes.io/instance': 'sietch', 'app.kubernetes.io/component': 'worker' };

  test('a budget of one unavailable pod per gateway generation and one for the workers', () => {
    const budgets = rendered(bot(), [1, 2]).filter((o) => o.kind === 'PodDisruptionBudget');
    expect(budgets.map((b) => [b.apiVersion, b.metadata.name, b.spec])).toEqual([
      [
        'policy/v1',
        'sietch-gateway',
        {
          maxUnavailable: 1,
          selector: { matchLabels: gatewaySelector(1) },
          unhealthyPodEvictionPolicy: 'AlwaysAllow',
        },
      ],
      [
        'policy/v1',
        'sietch-gateway-g2',
        {
          maxUnavailable: 1,
          selector: { matchLabels: gatewaySelector(2) },
          unhealthyPodEvictionPolicy: 'AlwaysAllow',
        },
      ],
      [
        'policy/v1',
        'sietch-worker',
        {
          maxUnavailable: 1,
          selector: { matchLabels: workerSelector },
          unhealthyPodEvictionPolicy: 'AlwaysAllow',
        },
      ],
    ]);
    // Owned by the bot, and labelled so the operator's informers see them.
    for (const b of budgets) {
      expect(b.metadata.labels['app.kubernetes.io/managed-by']).toBe('shardwarden');
      expect((b.metadata as { ownerReferences?: { uid: string }[] }).ownerReferences?.[0]?.uid).toBe('uid-1');
    }
  });

  test('gateway and worker pods spread over nodes by default', () => {
    const objects = rendered(bot(), [3]);
    expect(podOf(objects, 'StatefulSet', 'sietch-gateway-g3').spec.topologySpreadConstraints).toEqual(
      spread(gatewaySelector(3)),
    );
    expect(podOf(objects, 'Deployment', 'sietch-worker').spec.topologySpreadConstraints).toEqual(
      spread(workerSelector),
    );
  });

  test("the podTemplate's own constraints replace the default (an empty list: none); workers take a podTemplate too", () => {
    const zones = [
      { maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' },
    ];
    const objects = rendered(
      bot(
        {
          podTemplate: {
            topologySpreadConstraints: zones,
            labels: { team: 'brain' },
            nodeSelector: { pool: 'workers' },
            tolerations: [{ key: 'dedicated', operator: 'Exists' }],
          },
        },
        { podTemplate: { topologySpreadConstraints: [] } },
      ),
    );
    expect(podOf(objects, 'StatefulSet', 'sietch-gateway').spec.topologySpreadConstraints).toEqual([]);
    const worker = podOf(objects, 'Deployment', 'sietch-worker');
    expect(worker.spec).toMatchObject({
      topologySpreadConstraints: zones,
      nodeSelector: { pool: 'workers' },
      tolerations: [{ key: 'dedicated', operator: 'Exists' }],
    });
    expect(worker.metadata.labels).toMatchObject({ team: 'brain', ...workerSelector });
  });

  test("a removed generation's StatefulSet and budget both go; running ones stay", () => {
    const b = bot();
    const owned = (name: string, generation: number) => ({
      metadata: {
        name,
        labels: { 'shardwarden.io/gateway-generation': String(generation) },
        ownerReferences: [
          {
            apiVersion: 'shardwarden.io/v1alpha1',
            kind: 'DiscordBot',
            name: 'sietch',
            uid: 'uid-1',
            controller: true,
          },
        ],
      },
    });
    const live = [owned('sietch-gateway', 1), owned('sietch-gateway-g2', 2)];
    const stale = staleGatewayObjects(b, () => live, [], new Set([2]));
    expect(stale.map((s) => [s.ref.kind, s.ref.metadata.name])).toEqual([
      ['StatefulSet', 'sietch-gateway'],
      ['PodDisruptionBudget', 'sietch-gateway'],
    ]);
  });
});

const envOf = (o: RenderedObject) =>
  (o.spec as { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } }).template
    .spec.containers[0]!.env;
/** One variable of the gateway StatefulSet and the worker Deployment, in that order. */
const podEnv = (objects: RenderedObject[], name: string) =>
  objects
    .filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment')
    .map((o) => envOf(o).find((e) => e.name === name)?.value);
/** A one-shard bot's objects. */
const renderOneShard = (legacyKeys: boolean, spec: DiscordBot = bot()) => {
  const plan = { shards: 1, shardsPerPod: 1, pods: 1, clustersPerPod: 1, maxConcurrency: 1 };
  return renderDesiredObjects({
    bot: spec,
    active: { generation: 1, plan },
    gateways: [{ generation: 1, plan }],
    discordApiUrl: 'http://discord.test',
    applicationId: '42',
    secretsChecksums: { gateway: 'x', worker: 'x' },
    legacyKeys,
  });
};

describe("the gateway pod's memory settings", () => {
  test('gateway pods get MALLOC_ARENA_MAX (fewer malloc arenas keep less of the GUILD_CREATE burst), workers not', () => {
    expect(podEnv(renderOneShard(false), ENV.mallocArenaMax)).toEqual([GATEWAY_MALLOC_ARENA_MAX, undefined]);
  });
  test("no pod gets glibc's mmap threshold, nor a NODE_OPTIONS replacing the image's (the gateway passes its semi-space cap as a node flag itself)", () => {
    for (const name of ['MALLOC_MMAP_THRESHOLD_', 'NODE_OPTIONS', 'SHARDWARDEN_MAX_SEMI_SPACE_MB'])
      expect(podEnv(renderOneShard(false), name)).toEqual([undefined, undefined]);
  });
});

describe('the gateway pod shape (docs/gateway.md, "The two pod shapes")', () => {
  test("the spec's clustersPerPod, not the plan's: a default bot of one shard stays forked, clustersPerPod 1 runs in-process", () => {
    expect(podEnv(renderOneShard(false), ENV.clustersPerPod)).toEqual(['2', undefined]);
    const inProcess = bot();
    inProcess.spec.sharding.clustersPerPod = 1;
    expect(podEnv(renderOneShard(false, inProcess), ENV.clustersPerPod)).toEqual(['1', undefined]);
  });
});

describe('the keys of releases before namespaced keys (SHARDWARDEN_LEGACY_KEYS)', () => {
  test('only a bot whose name no other DiscordBot has is told the old keys are its own', () => {
    expect(podEnv(renderOneShard(true), 'SHARDWARDEN_LEGACY_KEYS')).toEqual(['1', '1']);
    expect(podEnv(renderOneShard(false), 'SHARDWARDEN_LEGACY_KEYS')).toEqual([undefined, undefined]);
  });

  test('a Redis Cluster gets the redis-cluster scaler and its addresses from the derived Secret', () => {
    const conn = {
      address: 'r-0:7000,r-1:7001',
      cluster: true as const,
      password: 'p',
      databaseIndex: 0,
      tls: false,
    };
    const triggers = renderScaledObject(bot(), conn).spec.triggers as { type: string; metadata: object }[];
    // One per queue.
    expect(triggers.map((t) => t.type)).toEqual(ALL_QUEUES.map(() => 'redis-cluster'));
    expect(triggers[0]!.metadata).not.toHaveProperty('databaseIndex');
    expect(renderKedaAuthSecret(bot(), conn).stringData).toEqual({
      addresses: 'r-0:7000,r-1:7001',
      password: 'p',
    });
    expect(renderTriggerAuthentication(bot(), conn).spec.secretTargetRef.map((r) => r.parameter)).toEqual([
      'addresses',
      'password',
    ]);
  });

  test('a partitioned bot: its pods are told the partition count, KEDA watches every partition', () => {
    const partitioned = (eventPartitions: number) => {
      const b = bot({ targetJobsPerReplica: 12 });
      return { ...b, spec: { ...b.spec, redis: { ...b.spec.redis, eventPartitions } } };
    };
    const partitionsEnv = (b: DiscordBot) =>
      rendered(b)
        .filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment')
        .map((o) => envOf(o).find((e) => e.name === 'SHARDWARDEN_EVENT_PARTITIONS')?.value);
    // One partition renders the pods as before partitions existed (no rollout on upgrade).
    expect(partitionsEnv(partitioned(1))).toEqual([undefined, undefined]);
    expect(partitionsEnv(partitioned(3))).toEqual(['3', '3']);
    const conn = { address: 'redis:6379', databaseIndex: 0, tls: false };
    const scaled = renderScaledObject(partitioned(3), conn).spec;
    const triggers = scaled.triggers.map((t) => ({
      name: t.name,
      list: t.metadata.listName,
      target: t.metadata.listLength,
    }));
    expect(triggers).toEqual([
      { name: 'interactions', list: 'shardwarden:{bots/sietch}:interactions:wait', target: '12' },
      { name: 'event_batches', list: 'shardwarden:{bots/sietch}:event-batches:wait', target: '12' },
      { name: 'events', list: 'shardwarden:{bots/sietch}:events:wait', target: '12' },
      { name: 'tasks', list: 'shardwarden:{bots/sietch}:tasks:wait', target: '12' },
      { name: 'event_batches_p1', list: 'shardwarden:{bots/sietch#1}:event-batches:wait', target: '12' },
      { name: 'event_batches_p2', list: 'shardwarden:{bots/sietch#2}:event-batches:wait', target: '12' },
    ]);
    // One metric, the sum of every list against the bot's whole target: a target below P
    // (12 partitions, 5 jobs per replica) asks for as many workers as the Builtin would.
    expect(scaled.advanced.scalingModifiers).toEqual({
      formula: 'interactions + event_batches + events + tasks + event_batches_p1 + event_batches_p2',
      target: '12',
    });
    // One partition: the triggers and names of releases before partitions, no composite metric.
    const single = renderScaledObject(partitioned(1), conn).spec;
    expect(single.triggers.map((t) => t.name)).toEqual(['interactions', 'event-batches', 'events', 'tasks']);
    expect(single.advanced).not.toHaveProperty('scalingModifiers');
  });

  test('KEDA watches the old wait lists too while they may be written', () => {
    const conn = { address: 'redis:6379', databaseIndex: 0, tls: false };
    const lists = (legacy: boolean) =>
      (renderScaledObject(bot(), conn, legacy).spec.triggers as { metadata: { listName: string } }[]).map(
        (t) => t.metadata.listName,
      );
    expect(lists(false)).toEqual([
      'shardwarden:{bots/sietch}:interactions:wait',
      'shardwarden:{bots/sietch}:event-batches:wait',
      'shardwarden:{bots/sietch}:events:wait',
      'shardwarden:{bots/sietch}:tasks:wait',
    ]);
    // Releases before namespaced keys wrote no batches.
    expect(lists(true).slice(4)).toEqual([
      'shardwarden:{sietch}:interactions:wait',
      'shardwarden:{sietch}:events:wait',
      'shardwarden:{sietch}:tasks:wait',
    ]);
  });
});
