import { readFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { CRD_PATH, TYPES_PATH, renderCrdYaml, renderTypes } from '../../operator/api/codegen.js';
import { MAX_NAME_LENGTH, customResourceDefinition } from '../../operator/api/v1alpha1/schema.js';
import { startControlPlane, waitUntil, type ControlPlane } from '../../testenv/index.js';

const valid = {
  apiVersion: 'shardwarden.io/v1alpha1',
  kind: 'DiscordBot',
  metadata: { name: 'sietch', namespace: 'default' },
  spec: {
    image: 'registry.example/sietch:1.4.2',
    tokenSecretRef: { name: 'sietch-discord' },
    redis: { urlSecretRef: { name: 'sietch-redis' } },
  },
};

type Bot = {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown>;
  spec: Record<string, unknown>;
};
const withSpec = (patch: Record<string, unknown>): Bot => ({ ...valid, spec: { ...valid.spec, ...patch } });
const without = (field: string): Bot => {
  const spec: Record<string, unknown> = { ...valid.spec };
  delete spec[field];
  return { ...valid, spec };
};

// Each invalid DiscordBot and what the apiserver's message must say about it.
const invalid: [string, Bot, string[]][] = [
  ['image missing', without('image'), ['spec.image', 'Required value']],
  ['image empty', withSpec({ image: '' }), ['spec.image', 'at least 1 chars long']],
  ['image with spaces', withSpec({ image: 'my image' }), ['spec.image', 'should match']],
  ['tokenSecretRef missing', without('tokenSecretRef'), ['spec.tokenSecretRef', 'Required value']],
  [
    'token Secret name not a DNS name',
    withSpec({ tokenSecretRef: { name: 'Bad_Name' } }),
    ['spec.tokenSecretRef.name', 'should match'],
  ],
  [
    'token Secret key with a slash',
    withSpec({ tokenSecretRef: { name: 'a', key: 'a/b' } }),
    ['spec.tokenSecretRef.key', 'should match'],
  ],
  ['redis missing', without('redis'), ['spec.redis', 'Required value']],
  [
    'database without urlSecretRef',
    withSpec({ database: {} }),
    ['spec.database.urlSecretRef', 'Required value'],
  ],
  [
    'unknown intent',
    withSpec({ intents: ['Everything'] }),
    ['spec.intents[0]', 'Unsupported value: "Everything"'],
  ],
  ['duplicate intent', withSpec({ intents: ['Guilds', 'Guilds'] }), ['spec.intents[1]', 'Duplicate value']],
  [
    'event that is not a Discord dispatch',
    withSpec({ events: ['INTERACTION_CREATE', 'MESSAGE_CREAT'] }),
    ['spec.events[1]', 'Unsupported value: "MESSAGE_CREAT"'],
  ],
  [
    'unknown sharding mode',
    withSpec({ sharding: { mode: 'Sometimes' } }),
    ['spec.sharding.mode', 'Unsupported value'],
  ],
  [
    'Fixed without shards',
    withSpec({ sharding: { mode: 'Fixed' } }),
    ['spec.sharding.shards', 'shards must be greater than 0 when mode is Fixed'],
  ],
  [
    'shards in Auto mode',
    withSpec({ sharding: { shards: 5 } }),
    ['spec.sharding.shards', 'only used in Fixed mode'],
  ],
  [
    'more clusters than shards per pod',
    withSpec({ sharding: { shardsPerPod: 2, clustersPerPod: 3 } }),
    ['spec.sharding.clustersPerPod', 'must not exceed shardsPerPod'],
  ],
  [
    'no event partition',
    withSpec({ redis: { urlSecretRef: { name: 'r' }, eventPartitions: 0 } }),
    ['spec.redis.eventPartitions', 'greater than or equal to 1'],
  ],
  [
    'more event partitions than 64',
    withSpec({ redis: { urlSecretRef: { name: 'r' }, eventPartitions: 65 } }),
    ['spec.redis.eventPartitions', 'less than or equal to 64'],
  ],
  [
    "guildsPerShard above Discord's 2500",
    withSpec({ sharding: { guildsPerShard: 3000 } }),
    ['spec.sharding.guildsPerShard', 'less than or equal to 2500'],
  ],
  [
    'refreshInterval not a duration',
    withSpec({ sharding: { refreshInterval: 'soon' } }),
    ['spec.sharding.refreshInterval', 'should match'],
  ],
  [
    'refreshInterval too short',
    withSpec({ sharding: { refreshInterval: '5s' } }),
    ['spec.sharding.refreshInterval', 'between 10s and 24h'],
  ],
  [
    'unknown reshard strategy',
    withSpec({ sharding: { reshardStrategy: 'Yolo' } }),
    ['spec.sharding.reshardStrategy', 'Unsupported value'],
  ],
  [
    'maxReplicas below minReplicas',
    withSpec({ worker: { minReplicas: 5, maxReplicas: 2 } }),
    ['spec.worker.maxReplicas', 'greater than or equal to minReplicas'],
  ],
  [
    'negative minReplicas',
    withSpec({ worker: { minReplicas: -1 } }),
    ['spec.worker.minReplicas', 'greater than or equal to 0'],
  ],
  [
    'unknown autoscaler',
    withSpec({ worker: { autoscaler: 'HPA' } }),
    ['spec.worker.autoscaler', 'Unsupported value'],
  ],
  [
    'worker concurrency 0',
    withSpec({ worker: { concurrency: 0 } }),
    ['spec.worker.concurrency', 'greater than or equal to 1'],
  ],
  [
    'RPC URL that is not http(s)',
    withSpec({ chain: { rpcUrls: ['ftp://node'] } }),
    ['spec.chain.rpcUrls[0]', 'should match'],
  ],
  [
    'RPC URLs both in the spec and in a Secret',
    withSpec({ chain: { rpcUrls: ['https://node'], rpcUrlsSecretRef: { name: 'rpc' } } }),
    ['spec.chain', 'set either rpcUrls or rpcUrlsSecretRef, not both'],
  ],
  [
    'worker publicUrl that is not http(s)',
    withSpec({ worker: { publicUrl: 'verify.example.org' } }),
    ['spec.worker.publicUrl', 'should match'],
  ],
  [
    'name too long for derived object names',
    { ...valid, metadata: { ...valid.metadata, name: 'a'.repeat(MAX_NAME_LENGTH + 1) } },
    [`metadata.name must be at most ${MAX_NAME_LENGTH} characters`, 'controller-revision-hash'],
  ],
  [
    'name with a dot (a DNS subdomain, not a Service name)',
    { ...valid, metadata: { ...valid.metadata, name: 'my.bot' } },
    ['metadata.name must be a DNS-1035 label'],
  ],
  [
    'name starting with a digit',
    { ...valid, metadata: { ...valid.metadata, name: '1bot' } },
    ['metadata.name must be a DNS-1035 label'],
  ],
  [
    'resources with a quantity that is not one',
    withSpec({ gateway: { resources: { requests: { cpu: 'lots' } } } }),
    ['spec.gateway.resources.requests.cpu', 'should match'],
  ],
  [
    'worker memory limit with a space',
    withSpec({ worker: { resources: { limits: { memory: '1 Gi' } } } }),
    ['spec.worker.resources.limits.memory', 'should match'],
  ],
];

describe('DiscordBot CRD', () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await startControlPlane();
    await cp.applyCrds(CRD_PATH);
  }, 120_000);
  afterAll(() => cp?.stop());

  test('the checked-in CRD YAML and TypeScript types are what the schema generates', async () => {
    expect(readFileSync(CRD_PATH, 'utf8')).toBe(renderCrdYaml());
    const options = { ...(await resolveConfig(TYPES_PATH)), filepath: TYPES_PATH };
    expect(readFileSync(TYPES_PATH, 'utf8')).toBe(await format(renderTypes(), options));
  });

  test('a minimal DiscordBot is accepted and gets every default', () => {
    const out = JSON.parse(
      cp.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(valid)),
    );
    expect(out.spec).toEqual({
      ...valid.spec,
      imagePullPolicy: 'IfNotPresent',
      tokenSecretRef: { name: 'sietch-discord', key: 'token' },
      redis: { urlSecretRef: { name: 'sietch-redis', key: 'url' }, eventPartitions: 1 },
      intents: ['Guilds'],
      events: ['INTERACTION_CREATE', 'GUILD_CREATE', 'GUILD_DELETE'],
      sharding: {
        mode: 'Auto',
        shards: 0,
        guildsPerShard: 1000,
        shardsPerPod: 16,
        clustersPerPod: 2,
        refreshInterval: '1h',
        reshardStrategy: 'BlueGreen',
        reshardTimeout: '10m',
      },
      gateway: {},
      worker: {
        autoscaler: 'Builtin',
        minReplicas: 1,
        maxReplicas: 20,
        targetJobsPerReplica: 5,
        scaleDownStabilizationSeconds: 300,
        concurrency: 50,
        terminationGracePeriodSeconds: 60,
      },
    });
  });

  test(`${invalid.length} invalid DiscordBots are rejected with messages that name the field`, () => {
    expect(invalid.length).toBeGreaterThanOrEqual(15);
    const failures: string[] = [];
    for (const [name, bot, expected] of invalid) {
      let message: string;
      try {
        cp.kubectl(['apply', '--dry-run=server', '-f', '-'], JSON.stringify(bot));
        message = '(accepted)';
      } catch (err) {
        message = String((err as { stderr?: string }).stderr);
      }
      for (const part of expected)
        if (!message.includes(part)) failures.push(`${name}: expected "${part}" in: ${message.trim()}`);
    }
    expect(failures).toEqual([]);
  });

  test("resources in Kubernetes' quantity syntax are accepted as written", () => {
    const resources = { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: 2, memory: '1.5Gi' } };
    const bot = withSpec({ gateway: { resources }, worker: { resources: { requests: { cpu: '1e3' } } } });
    const out = JSON.parse(
      cp.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(bot)),
    );
    expect(out.spec.gateway.resources).toEqual(resources);
    expect(out.spec.worker.resources).toEqual({ requests: { cpu: '1e3' } });
  });

  test('a bot created under the older 40-character rule can still be edited, and its status written', async () => {
    const older = structuredClone(customResourceDefinition());
    older.spec.versions[0]!.schema.openAPIV3Schema['x-kubernetes-validations'] = [
      { rule: 'self.metadata.name.size() <= 40', message: 'at most 40' },
    ];
    const name = 'o'.repeat(40);
    const apply = (crd: unknown) =>
      cp.kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(crd));
    const create = (n: string, dryRun = false) => {
      const bot = { ...valid, metadata: { ...valid.metadata, name: n } };
      try {
        cp.kubectl(['create', ...(dryRun ? ['--dry-run=server'] : []), '-f', '-'], JSON.stringify(bot));
        return true;
      } catch {
        return false;
      }
    };
    apply(older);
    await waitUntil('the older rule in effect', async () => create(name));
    apply(customResourceDefinition());
    await waitUntil('the new rule in effect', async () => !create('p'.repeat(MAX_NAME_LENGTH + 1), true));
    cp.kubectl([
      'patch',
      'dbot',
      name,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { image: 'example/other:2' } }),
    ]);
    const status = { status: { observedGeneration: 2 } };
    cp.kubectl(['patch', 'dbot', name, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
    const bot = JSON.parse(cp.kubectl(['get', 'dbot', name, '-o', 'json']));
    expect([bot.spec.image, bot.status.observedGeneration]).toEqual(['example/other:2', 2]);
  });

  test('short name, category and printer columns', () => {
    cp.kubectl(['apply', '-f', '-'], JSON.stringify(valid));
    const table = cp.kubectl(['get', 'dbot']);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+SHARDS\s+PODS\s+READY\s+WORKERS\s+BACKLOG\s+AGE$/);
    expect(cp.kubectl(['get', 'shardwarden', '-o', 'name'])).toContain('discordbot.shardwarden.io/sietch');
  });

  test('kubectl explain describes the fields', () => {
    const explained = cp.kubectl(['explain', 'discordbot.spec.sharding']);
    expect(explained).toContain('How many shards, and how they are spread over gateway pods.');
    expect(explained).toMatch(/guildsPerShard\s+<integer>/);
    expect(explained).toContain("Discord's recommendation");
    expect(cp.kubectl(['explain', 'discordbot.spec.worker.targetJobsPerReplica'])).toContain(
      'ceil(backlog / this)',
    );
    // Deprecated, so no default: the default worker object above does not carry it.
    expect(cp.kubectl(['explain', 'discordbot.spec.worker.targetBacklogPerReplica'])).toContain(
      'Deprecated and ignored',
    );
  });
});
