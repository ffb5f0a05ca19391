import { AppsV1Api, CoreV1Api, type V1StatefulSet } from '@kubernetes/client-node';
import { createLogger } from '../../bot/observability/logger.js';
import { parseConfig } from '../../operator/config/config.js';
import { DiscordBotController } from '../../operator/controller/discordbot-controller.js';
import { OperatorMetrics } from '../../operator/metrics/operator-metrics.js';
import { waitUntil } from '../../testenv/index.js';
import { MAX_NAME_LENGTH } from '../../operator/api/v1alpha1/schema.js';
import { gatewayName } from '../../operator/rendering/gateway.js';
import {
  applyYaml,
  events,
  exampleBot,
  patchBot,
  readBot,
  secret,
  startHarness,
  waitForCondition,
  waitForEvent,
  type Harness,
} from './harness.js';

const NS = 'bots';

describe('DiscordBot reconcile loop (real apiserver, garbage collector, kwok, Discord simulator)', () => {
  let h: Harness;
  let controller: DiscordBotController;
  let metrics: OperatorMetrics;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  const gatewayBotCalls = () => h.sim.recorder.restCalls.filter((c) => c.route === 'GET /gateway/bot');

  beforeAll(async () => {
    h = await startHarness({
      kwokNodes: 1,
      simulator: {
        seed: 11,
        guilds: 2_500,
        gateway: { maxConcurrency: 1 },
        tokens: ['token-one', 'token-two', 'token-flaky'],
      },
    });
    h.cp.kubectl(['create', 'namespace', NS]);
    apps = h.kc.makeApiClient(AppsV1Api);
    core = h.kc.makeApiClient(CoreV1Api);
    metrics = new OperatorMetrics();
    const config = parseConfig(
      ['--discord-api-url=' + h.sim.apiUrl, '--leader-elect=false', '--resync-period=5m'],
      {},
    );
    controller = new DiscordBotController(h.kc, config, metrics, createLogger('operator-test', 'silent'));
    await controller.start();
  }, 180_000);
  afterAll(async () => {
    await controller?.stop();
    await h?.stop();
  });

  test('an example DiscordBot gets its StatefulSet, Deployment, Services and ConfigMap, and becomes Ready', async () => {
    applyYaml(h.cp, [
      secret(NS, 'sietch-discord', { token: 'token-one' }),
      secret(NS, 'sietch-redis', { url: 'redis://redis.bots:6379' }),
      exampleBot(NS, 'sietch', {
        sharding: { shardsPerPod: 2, clustersPerPod: 1, refreshInterval: '10s' },
        events: ['INTERACTION_CREATE', 'MESSAGE_CREATE'],
      }),
    ]);
    const bot = await waitForCondition(h.kc, NS, 'sietch', 'Ready', 'True', 'AllShardsReady', 90_000);
    // 2,500 guilds: Discord recommends 3 shards; 2 per pod → 2 pods.
    expect(bot.status).toMatchObject({
      observedGeneration: bot.metadata.generation,
      shards: 3,
      recommendedShards: 3,
      maxConcurrency: 1,
      plan: { shards: 3, shardsPerPod: 2, pods: 2, clustersPerPod: 1, maxConcurrency: 1 },
      gateway: { generation: 1, pods: 2, readyPods: 2 },
      workers: { replicas: 1 },
      sessionStartLimit: { total: 1000, remaining: 1000 },
    });
    expect(bot.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'AllShardsReady'],
      ['Progressing', 'False', 'Stable'],
      ['Degraded', 'False', 'AsExpected'],
      // The Builtin autoscaler cannot reach this Redis (there is none); the bot runs anyway.
      ['WorkersScaled', 'False', 'RedisUnavailable'],
    ]);

    const sts = await apps.readNamespacedStatefulSet({ name: 'sietch-gateway', namespace: NS });
    expect(sts.spec?.replicas).toBe(2);
    expect(sts.spec?.podManagementPolicy).toBe('Parallel');
    expect(sts.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'DiscordBot',
      name: 'sietch',
      controller: true,
      uid: bot.metadata.uid,
    });
    const pod = sts.spec!.template.spec!;
    const c = pod.containers[0]!;
    const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      SHARDWARDEN_TOTAL_SHARDS: '3',
      SHARDWARDEN_SHARDS_PER_POD: '2',
      SHARDWARDEN_CLUSTERS_PER_POD: '1',
      SHARDWARDEN_MAX_CONCURRENCY: '1',
      SHARDWARDEN_EVENTS: 'INTERACTION_CREATE,MESSAGE_CREATE',
      SHARDWARDEN_INTENTS: 'Guilds',
      DISCORD_API_URL: h.sim.apiUrl,
      SHARDWARDEN_BOT_NAMESPACE: NS,
      // The token's application, from GET /users/@me: the identify and REST budgets' key.
      SHARDWARDEN_APPLICATION_ID: h.sim.applicationId,
      // No other DiscordBot is named sietch: the keys of releases before namespaced keys are its.
      SHARDWARDEN_LEGACY_KEYS: '1',
      SHARDWARDEN_POD_INDEX: { fieldRef: { fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']" } },
      DISCORD_TOKEN: { secretKeyRef: { name: 'sietch-discord', key: 'token' } },
      REDIS_URL: { secretKeyRef: { name: 'sietch-redis', key: 'url' } },
    });
    expect(JSON.stringify(sts)).not.toContain('token-one');
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.securityContext?.runAsNonRoot).toBe(true);

    const dep = await apps.readNamespacedDeployment({ name: 'sietch-worker', namespace: NS });
    expect(dep.spec?.replicas).toBe(1);
    expect(dep.spec?.template.spec?.containers[0]?.args).toEqual(['worker']);
    const svc = await core.readNamespacedService({ name: 'sietch-gateway', namespace: NS });
    expect(svc.spec?.clusterIP).toBe('None');
    const metricsSvc = await core.readNamespacedService({ name: 'sietch-worker-metrics', namespace: NS });
    expect(metricsSvc.spec?.clusterIP).toBe('None');
    // The public routes (wallet verification) have their own port; their Service exists only
    // with worker.publicUrl (tests/operator/services.test.ts).
    await expect(
      core.readNamespacedService({ name: 'sietch-worker-public', namespace: NS }),
    ).rejects.toThrow();
    expect(dep.spec?.template.spec?.containers[0]?.ports?.map((p) => [p.name, p.containerPort])).toEqual([
      ['http', 8080],
      ['public', 8081],
    ]);
    const cm = await core.readNamespacedConfigMap({ name: 'sietch-plan', namespace: NS });
    expect(JSON.parse(cm.data!['plan.json']!).pods).toEqual([
      { pod: 0, first: 0, last: 1 },
      { pod: 1, first: 2, last: 2 },
    ]);
    await waitForEvent(h.cp, NS, 'sietch', 'Planned', (e) => e.reason === 'Planned');
    expect(await metrics.registry.getSingleMetricAsString('shardwarden_bot_shards')).toContain(
      'shardwarden_bot_shards{namespace="bots",bot="sietch"} 3',
    );
  });

  test('editing the spec updates the objects in place (same UIDs)', async () => {
    const before = await apps.readNamespacedStatefulSet({ name: 'sietch-gateway', namespace: NS });
    const dep = await apps.readNamespacedDeployment({ name: 'sietch-worker', namespace: NS });
    patchBot(h.cp, NS, 'sietch', { sharding: { shardsPerPod: 3 }, worker: { minReplicas: 2 } });
    await waitUntil(
      'StatefulSet with 1 replica',
      async () =>
        (await apps.readNamespacedStatefulSet({ name: 'sietch-gateway', namespace: NS })).spec?.replicas ===
        1,
    );
    const after = await apps.readNamespacedStatefulSet({ name: 'sietch-gateway', namespace: NS });
    expect(after.metadata?.uid).toBe(before.metadata?.uid);
    await waitUntil(
      '2 workers',
      async () =>
        (await apps.readNamespacedDeployment({ name: 'sietch-worker', namespace: NS })).spec?.replicas === 2,
    );
    expect(
      (await apps.readNamespacedDeployment({ name: 'sietch-worker', namespace: NS })).metadata?.uid,
    ).toBe(dep.metadata?.uid);
    const bot = await waitForCondition(h.kc, NS, 'sietch', 'Ready', 'True');
    expect(bot.status?.observedGeneration).toBe(bot.metadata.generation);
    const changed =
      'Shard plan changed from 3 shards over 2 pods to 3 shards over 1 pod (Discord recommends 3, max_concurrency 1)';
    await waitForEvent(
      h.cp,
      NS,
      'sietch',
      changed,
      (e) => e.reason === 'PlanChanged' && e.message === changed,
    );
  });

  test('objects edited by hand are put back: image, replicas, an env var, a Service port, the plan', async () => {
    const ns = ['-n', NS];
    h.cp.kubectl([
      'set',
      'image',
      'statefulset/sietch-gateway',
      'gateway=registry.example/other:6.6.6',
      ...ns,
    ]);
    h.cp.kubectl(['scale', 'statefulset/sietch-gateway', '--replicas=4', ...ns]);
    // Builtin autoscaling takes the workers' live count as its own (as an HPA does), within
    // minReplicas..maxReplicas: a count below the floor is brought back.
    h.cp.kubectl(['scale', 'deployment/sietch-worker', '--replicas=0', ...ns]);
    h.cp.kubectl(['set', 'env', 'deployment/sietch-worker', 'SHARDWARDEN_WORKER_CONCURRENCY=999', ...ns]);
    const port = [{ op: 'replace', path: '/spec/ports/0/port', value: 9999 }];
    h.cp.kubectl(['patch', 'service', 'sietch-gateway', '--type=json', '-p', JSON.stringify(port), ...ns]);
    const plan = { data: { 'plan.json': '{}' } };
    h.cp.kubectl(['patch', 'configmap', 'sietch-plan', '--type=merge', '-p', JSON.stringify(plan), ...ns]);
    // The controller resyncs every 5 minutes: only the edits themselves can wake it in time.
    await waitUntil('every hand edit undone', async () => {
      const sts = await apps.readNamespacedStatefulSet({ name: 'sietch-gateway', namespace: NS });
      const dep = await apps.readNamespacedDeployment({ name: 'sietch-worker', namespace: NS });
      const svc = await core.readNamespacedService({ name: 'sietch-gateway', namespace: NS });
      const cm = await core.readNamespacedConfigMap({ name: 'sietch-plan', namespace: NS });
      const env = dep.spec?.template.spec?.containers[0]?.env ?? [];
      return (
        sts.spec?.template.spec?.containers[0]?.image === 'registry.example/sietch:1.4.2' &&
        sts.spec?.replicas === 1 &&
        dep.spec?.replicas === 2 &&
        env.find((e) => e.name === 'SHARDWARDEN_WORKER_CONCURRENCY')?.value === '50' &&
        JSON.stringify(svc.spec?.ports?.map((p) => [p.name, p.port])) === '[["http",8080]]' &&
        JSON.parse(cm.data?.['plan.json'] ?? '{}').pods?.length === 1
      );
    });
    await waitForCondition(h.kc, NS, 'sietch', 'Ready', 'True');
  });

  test('reconciling a settled bot sends no writes: no apply, no status, no Event', async () => {
    type Counter = { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> };
    const sum = async (counter: Counter, match: (labels: Record<string, unknown>) => boolean) =>
      (await counter.get()).values.filter((v) => match(v.labels)).reduce((a, v) => a + v.value, 0);
    // Everything but the informers' lists and Secret reads: what an idle operator must not send.
    const writes = () => sum(metrics.apiRequests, (l) => l.verb !== 'list' && l.verb !== 'get');
    const reconciles = () => sum(metrics.reconciles, () => true);
    // Settled: every pod the status counts is ready, so no workload status is still moving.
    await waitUntil('the bot settled', async () => {
      const { gateway, workers } = (await readBot(h.kc, NS, 'sietch')).status ?? {};
      return (
        !!gateway &&
        !!workers &&
        gateway.readyPods === gateway.pods &&
        workers.readyReplicas === workers.replicas &&
        workers.replicas === workers.desiredReplicas
      );
    });
    const before = await writes();
    const seen = await reconciles();
    h.cp.kubectl(['annotate', 'dbot', 'sietch', '-n', NS, 'poke=idle', '--overwrite']);
    await waitUntil('the bot reconciled again', async () => (await reconciles()) > seen);
    expect(await writes()).toBe(before);
  });

  test('a restarted operator finds the objects as rendered and sends no writes', async () => {
    // A new operator's caches come from a list, whose items carry no apiVersion or kind, and
    // hold what the apiserver stored (empty env values left out): neither is a change.
    const fresh = new OperatorMetrics();
    const restarted = new DiscordBotController(
      h.kc,
      parseConfig(['--discord-api-url=' + h.sim.apiUrl, '--leader-elect=false', '--resync-period=5m'], {}),
      fresh,
      createLogger('operator-test', 'silent'),
    );
    await controller.stop();
    try {
      await restarted.start();
      const count = async (verbs: string[]) =>
        (await fresh.apiRequests.get()).values
          .filter((v) => verbs.includes(String(v.labels.verb)))
          .reduce((a, v) => a + v.value, 0);
      const reconciled = async () => (await fresh.reconciles.get()).values.reduce((a, v) => a + v.value, 0);
      await waitUntil('the restarted operator reconciled the bot', async () => (await reconciled()) > 0);
      h.cp.kubectl(['annotate', 'dbot', 'sietch', '-n', NS, 'poke=restarted', '--overwrite']);
      await waitUntil('and again', async () => (await reconciled()) > 1);
      expect(await count(['apply', 'patch', 'delete'])).toBe(0);
    } finally {
      await restarted.stop();
      controller = new DiscordBotController(
        h.kc,
        parseConfig(['--discord-api-url=' + h.sim.apiUrl, '--leader-elect=false', '--resync-period=5m'], {}),
        metrics,
        createLogger('operator-test', 'silent'),
      );
      await controller.start();
    }
  });

  test('with a database, workers get a migrate init container on the migration URL and skip migrating themselves; RPC URLs from a Secret', async () => {
    applyYaml(h.cp, [
      secret(NS, 'sietch-db', { url: 'postgres://app:pw-app@pgbouncer.bots:6432/sietch' }),
      secret(NS, 'sietch-db-owner', { url: 'postgres://owner:pw-owner@postgres.bots:5432/sietch' }),
      secret(NS, 'sietch-rpc', { urls: 'https://eth.example/v2/KEY-123,https://backup.example/KEY-456' }),
    ]);
    patchBot(h.cp, NS, 'sietch', {
      database: { urlSecretRef: { name: 'sietch-db' }, migrationUrlSecretRef: { name: 'sietch-db-owner' } },
      worker: { publicUrl: 'https://verify.example.org' },
      chain: { rpcUrlsSecretRef: { name: 'sietch-rpc' } },
    });
    const read = () => apps.readNamespacedDeployment({ name: 'sietch-worker', namespace: NS });
    await waitUntil(
      'the migrate init container',
      async () => (await read()).spec?.template.spec?.initContainers?.length === 1,
    );
    const pod = (await read()).spec!.template.spec!;
    expect(pod.initContainers![0]).toMatchObject({
      name: 'migrate',
      args: ['migrate'],
      env: [{ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'sietch-db-owner', key: 'url' } } }],
      securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
    });
    const env = Object.fromEntries(pod.containers[0]!.env!.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      DATABASE_URL: { secretKeyRef: { name: 'sietch-db', key: 'url' } },
      SHARDWARDEN_MIGRATIONS: 'skip',
      SHARDWARDEN_PUBLIC_URL: 'https://verify.example.org',
      CHAIN_RPC_URLS: { secretKeyRef: { name: 'sietch-rpc', key: 'urls' } },
    });
    expect(JSON.stringify(await read())).not.toMatch(/pw-app|pw-owner|KEY-123/);
  });

  test('each referenced Secret wakes the bot and rolls only the pods that read it', async () => {
    const checksums = async () => {
      const sts = await apps.readNamespacedStatefulSet({ name: 'sietch-gateway', namespace: NS });
      const dep = await apps.readNamespacedDeployment({ name: 'sietch-worker', namespace: NS });
      const of = (t?: { metadata?: { annotations?: Record<string, string> } }) =>
        t?.metadata?.annotations?.['shardwarden.io/secrets-checksum'];
      return { gateway: of(sts.spec?.template), worker: of(dep.spec?.template) };
    };
    const workerSecrets: [string, Record<string, string>][] = [
      ['sietch-db', { url: 'postgres://app:pw-app-2@pgbouncer.bots:6432/sietch' }],
      ['sietch-db-owner', { url: 'postgres://owner:pw-owner-2@postgres.bots:5432/sietch' }],
      ['sietch-rpc', { urls: 'https://eth.example/v2/KEY-789' }],
    ];
    for (const [name, data] of workerSecrets) {
      const before = await checksums();
      applyYaml(h.cp, [secret(NS, name, data)]);
      // The resync is 5 minutes away: only the Secret's watch event can wake the bot in time.
      await waitUntil(`the workers' checksum after ${name} changed`, async () => {
        return (await checksums()).worker !== before.worker;
      });
      // The StatefulSet is applied before the Deployment in the same pass.
      expect((await checksums()).gateway).toBe(before.gateway);
    }
    h.cp.kubectl(['delete', 'secret', 'sietch-db-owner', '-n', NS]);
    const bot = await waitForCondition(h.kc, NS, 'sietch', 'Degraded', 'True', 'SecretNotFound');
    expect(bot.status?.conditions?.find((c) => c.type === 'Degraded')?.message).toContain(
      'Secret bots/sietch-db-owner (database migration URL) does not exist',
    );
    applyYaml(h.cp, [
      secret(NS, 'sietch-db-owner', { url: 'postgres://owner:pw-owner@postgres.bots:5432/sietch' }),
    ]);
    await waitForCondition(h.kc, NS, 'sietch', 'Degraded', 'False');
  });

  test('rotating the token Secret changes the gateway and worker pod template checksums', async () => {
    const checksum = async () =>
      [
        (await apps.readNamespacedStatefulSet({ name: 'sietch-gateway', namespace: NS })).spec?.template,
        (await apps.readNamespacedDeployment({ name: 'sietch-worker', namespace: NS })).spec?.template,
      ].map((t) => t?.metadata?.annotations?.['shardwarden.io/secrets-checksum']);
    const before = await checksum();
    applyYaml(h.cp, [secret(NS, 'sietch-discord', { token: 'token-two' })]);
    // Gateways and workers both read the token.
    await waitUntil('both checksums changed', async () => {
      const [gateway, worker] = await checksum();
      return gateway !== before[0] && worker !== before[1];
    });
    await waitForCondition(h.kc, NS, 'sietch', 'Degraded', 'False');
  });

  test('adding guilds until the recommendation grows changes the plan on the next refresh, with an Event', async () => {
    h.sim.addGuilds(1_000); // 3,500 guilds → 4 shards
    const bot = await waitUntil(
      'plan with 4 shards',
      async () => (await readBot(h.kc, NS, 'sietch')).status?.shards === 4,
      { timeoutMs: 30_000, intervalMs: 250 },
    ).then(() => readBot(h.kc, NS, 'sietch'));
    expect(bot.status?.recommendedShards).toBe(4);
    // A new shard count is a BlueGreen reshard: the plan changes when generation 2 takes over.
    expect(bot.status?.gateway?.generation).toBe(2);
    await waitUntil('PlanChanged Event', async () =>
      events(h.cp, NS, 'sietch').some(
        (e) =>
          e.message ===
          'Shard plan changed from 3 shards over 1 pod to 4 shards over 2 pods (Discord recommends 4, max_concurrency 1)',
      ),
    );
  });

  test('a removed Secret sets SecretNotFound; restoring it recovers', async () => {
    h.cp.kubectl(['delete', 'secret', 'sietch-redis', '-n', NS]);
    const bot = await waitForCondition(h.kc, NS, 'sietch', 'Degraded', 'True', 'SecretNotFound');
    expect(bot.status?.conditions?.find((c) => c.type === 'Degraded')?.message).toContain(
      'Secret bots/sietch-redis (Redis URL) does not exist',
    );
    expect(bot.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'SecretNotFound',
    });
    applyYaml(h.cp, [secret(NS, 'sietch-redis', { url: 'redis://redis.bots:6379' })]);
    await waitForCondition(h.kc, NS, 'sietch', 'Degraded', 'False');
    await waitForEvent(h.cp, NS, 'sietch', 'SecretNotFound', (e) => e.reason === 'SecretNotFound');
    await waitForEvent(h.cp, NS, 'sietch', 'Recovered', (e) => e.reason === 'Recovered');
  });

  test('a Redis URL that names no Redis sets InvalidRedisURL, with no autoscaler too, without repeating it', async () => {
    applyYaml(h.cp, [
      secret(NS, 'badredis-discord', { token: 'token-one' }),
      secret(NS, 'badredis-redis', { url: 'redis+cluster://:hunter2@r-0:7000/3' }),
      exampleBot(NS, 'badredis', { worker: { autoscaler: 'None' } }),
    ]);
    const bot = await waitForCondition(h.kc, NS, 'badredis', 'Degraded', 'True', 'InvalidRedisURL');
    const message = bot.status?.conditions?.find((c) => c.type === 'Degraded')?.message;
    expect(message).toBe(
      'the Redis URL: a Redis Cluster has database 0 only (no path other than /0) (Secret bots/badredis-redis key "url")',
    );
    // Refused before anything is rendered: no pods that would crash on it.
    await expect(
      apps.readNamespacedStatefulSet({ name: 'badredis-gateway', namespace: NS }),
    ).rejects.toThrow();
    applyYaml(h.cp, [secret(NS, 'badredis-redis', { url: 'redis+cluster://:hunter2@r-0:7000' })]);
    await waitForCondition(h.kc, NS, 'badredis', 'Degraded', 'False');
    expect(JSON.stringify(await readBot(h.kc, NS, 'badredis'))).not.toContain('hunter2');
    expect(JSON.stringify(events(h.cp, NS, 'badredis'))).not.toContain('hunter2');
    h.cp.kubectl(['delete', 'discordbot', 'badredis', '-n', NS]);
  });

  test('a bad token sets InvalidToken, does not hot-loop, and is never written anywhere', async () => {
    applyYaml(h.cp, [
      secret(NS, 'badtoken-discord', { token: 'definitely-not-valid' }),
      secret(NS, 'badtoken-redis', { url: 'redis://x' }),
      exampleBot(NS, 'badtoken', { sharding: { refreshInterval: '10s' } }),
    ]);
    const bot = await waitForCondition(h.kc, NS, 'badtoken', 'Degraded', 'True', 'InvalidToken');
    expect(bot.status?.conditions?.find((c) => c.type === 'Degraded')?.message).toBe(
      'Discord rejected the bot token (401 Unauthorized); update the token Secret (bots/badtoken-discord key "token")',
    );
    const calls = () => gatewayBotCalls().filter((c) => c.status === 401).length;
    const seen = calls();
    // Other changes and resyncs reconcile the bot again, but Discord is not asked again.
    h.cp.kubectl(['annotate', 'dbot', 'badtoken', '-n', NS, 'poke=1']);
    patchBot(h.cp, NS, 'badtoken', { worker: { maxReplicas: 3 } });
    await new Promise((r) => setTimeout(r, 12_000));
    expect(seen).toBe(1);
    expect(calls()).toBe(1);
    const everything = h.cp.kubectl([
      'get',
      'dbot,events,statefulsets,deployments,configmaps',
      '-n',
      NS,
      '-o',
      'json',
    ]);
    expect(everything).not.toContain('definitely-not-valid');
    // Fixing the Secret is enough.
    applyYaml(h.cp, [secret(NS, 'badtoken-discord', { token: 'token-one' })]);
    await waitForCondition(h.kc, NS, 'badtoken', 'Degraded', 'False');
  }, 60_000);

  test('an object the apiserver refuses (quota) sets ApplyFailed with its message and a Warning; fixed, it clears', async () => {
    const QNS = 'quota';
    h.cp.kubectl(['create', 'namespace', QNS]);
    applyYaml(h.cp, [
      {
        apiVersion: 'v1',
        kind: 'ResourceQuota',
        metadata: { name: 'no-deployments', namespace: QNS },
        spec: { hard: { 'count/deployments.apps': '0' } },
      },
    ]);
    // The quota controller fills in what is used; until then admission refuses for another reason.
    await waitUntil('the quota is counted', async () =>
      h.cp
        .kubectl(['get', 'resourcequota', 'no-deployments', '-n', QNS, '-o', 'jsonpath={.status.used}'])
        .includes('count/deployments.apps'),
    );
    applyYaml(h.cp, [
      secret(QNS, 'capped-discord', { token: 'token-one' }),
      secret(QNS, 'capped-redis', { url: 'redis://x' }),
      exampleBot(QNS, 'capped'),
    ]);
    const bot = await waitForCondition(h.kc, QNS, 'capped', 'Ready', 'False', 'ApplyFailed');
    const message = bot.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '';
    expect(message).toMatch(
      /^Deployment quota\/capped-worker was refused: HTTP 403: .*exceeded quota: no-deployments/,
    );
    expect(bot.status?.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'ApplyFailed',
    });
    // Everything else was applied all the same.
    await apps.readNamespacedStatefulSet({ name: 'capped-gateway', namespace: QNS });
    // Events follow the status write.
    await waitUntil('the ApplyFailed Warning', async () =>
      events(h.cp, QNS, 'capped').some(
        (e) => e.type === 'Warning' && e.reason === 'ApplyFailed' && e.message === message,
      ),
    );
    h.cp.kubectl(['delete', 'resourcequota', 'no-deployments', '-n', QNS]);
    await waitForCondition(h.kc, QNS, 'capped', 'Degraded', 'False');
    await apps.readNamespacedDeployment({ name: 'capped-worker', namespace: QNS });
    await waitUntil('the Recovered Event', async () =>
      events(h.cp, QNS, 'capped').some((e) => e.reason === 'Recovered'),
    );
    h.cp.kubectl(['delete', 'namespace', QNS, '--wait=false']);
  }, 90_000);

  test('429 and 5xx from Discord are retried with backoff', async () => {
    // For this bot's token only: the other bots' periodic asks must not use up the faults.
    h.sim.rateLimits.force429('GET /gateway/bot', 1_500, { token: 'token-flaky' });
    h.sim.rateLimits.failNext('GET /gateway/bot', 502, { times: 2, token: 'token-flaky' });
    applyYaml(h.cp, [
      secret(NS, 'flaky-discord', { token: 'token-flaky' }),
      secret(NS, 'flaky-redis', { url: 'redis://x' }),
      exampleBot(NS, 'flaky'),
    ]);
    await waitForCondition(h.kc, NS, 'flaky', 'Degraded', 'True', 'DiscordUnavailable');
    const bot = await waitForCondition(h.kc, NS, 'flaky', 'Degraded', 'False', undefined, 30_000);
    expect(bot.status?.recommendedShards).toBe(h.sim.recommendedShards());
    const calls = gatewayBotCalls().filter((c) => c.tokenIndex === 2);
    // Injected failures come first, then the forced 429.
    expect(calls.map((c) => c.status)).toEqual([502, 502, 429, 200]);
    const gaps = calls.slice(1).map((c, i) => c.at - calls[i]!.at);
    // Exponential backoff on 5xx: 1 s, then 2 s (lower bounds: a busy machine only adds time).
    expect(gaps[0]).toBeGreaterThanOrEqual(950);
    expect(gaps[1]).toBeGreaterThanOrEqual(1_950);
    expect(gaps[2]).toBeGreaterThanOrEqual(1_400); // retry_after of the 429
  }, 60_000);

  test('a watch open longer than 30 s keeps delivering', async () => {
    await new Promise((r) => setTimeout(r, 35_000));
    patchBot(h.cp, NS, 'flaky', { worker: { minReplicas: 3 } });
    await waitUntil(
      'worker replicas follow the edit',
      async () =>
        (await apps.readNamespacedDeployment({ name: 'flaky-worker', namespace: NS })).spec?.replicas === 3,
      { timeoutMs: 30_000 },
    );
  }, 60_000);

  test('the apiserver restarts and the operator converges afterwards', async () => {
    await h.cp.restartApiserver();
    patchBot(h.cp, NS, 'flaky', { worker: { minReplicas: 4, maxReplicas: 20 } });
    await waitUntil(
      'edit after restart applied',
      async () =>
        (await apps.readNamespacedDeployment({ name: 'flaky-worker', namespace: NS })).spec?.replicas === 4,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }, 90_000);

  test('deleting the bot leaves nothing behind', async () => {
    h.cp.kubectl(['delete', 'dbot', 'flaky', '-n', NS]);
    await waitUntil(
      'owned objects collected',
      async () => {
        const left = h.cp.kubectl([
          'get',
          'statefulsets,deployments,services,configmaps',
          '-n',
          NS,
          '-l',
          'app.kubernetes.io/instance=flaky',
          '-o',
          'name',
        ]);
        return left.trim() === '';
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const sts: V1StatefulSet[] = (await apps.listNamespacedStatefulSet({ namespace: NS })).items;
    // sietch was resharded (3 → 4 shards) above: its gateway is generation 2.
    expect(sts.map((s) => s.metadata?.name).sort()).toEqual(['badtoken-gateway', 'sietch-gateway-g2']);
    await waitUntil(
      'per-bot metrics removed',
      async () =>
        !(await metrics.registry.getSingleMetricAsString('shardwarden_bot_shards')).includes('bot="flaky"'),
    );
  }, 90_000);

  test('a second bot of the same name in another namespace: neither owns the old keys; deleting it gives them back', async () => {
    const legacyKeys = async (namespace: string) => {
      const sts = await apps
        .readNamespacedStatefulSet({ name: 'twin-gateway', namespace })
        .catch(() => undefined);
      if (!sts) return 'missing';
      return sts.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'SHARDWARDEN_LEGACY_KEYS')
        ?.value;
    };
    const twin = (namespace: string) => [
      secret(namespace, 'twin-discord', { token: 'token-two' }),
      secret(namespace, 'twin-redis', { url: 'redis://x' }),
      exampleBot(namespace, 'twin'),
    ];
    applyYaml(h.cp, twin(NS));
    await waitUntil('bots/twin owns the old keys', async () => (await legacyKeys(NS)) === '1');
    h.cp.kubectl(['create', 'namespace', 'twins']);
    applyYaml(h.cp, twin('twins'));
    // The new bot's arrival wakes the first one (no resync needed: that is 5 minutes here).
    await waitUntil(
      'neither twin owns the old keys',
      async () => (await legacyKeys(NS)) === undefined && (await legacyKeys('twins')) === undefined,
    );
    h.cp.kubectl(['delete', 'dbot', 'twin', '-n', 'twins']);
    await waitUntil('bots/twin owns them again', async () => (await legacyKeys(NS)) === '1');
    h.cp.kubectl(['delete', 'dbot', 'twin', '-n', NS]);
  }, 120_000);

  test(`the longest name the CRD accepts (${MAX_NAME_LENGTH} characters) gets every object, and its pods`, async () => {
    const name = `l${'o'.repeat(MAX_NAME_LENGTH - 2)}g`;
    applyYaml(h.cp, [
      secret(NS, `${name}-discord`, { token: 'token-one' }),
      secret(NS, `${name}-redis`, { url: 'redis://x' }),
      exampleBot(NS, name),
    ]);
    const bot = await waitForCondition(h.kc, NS, name, 'Ready', 'True', 'AllShardsReady', 90_000);
    const pods = (
      await core.listNamespacedPod({ namespace: NS, labelSelector: `app.kubernetes.io/instance=${name}` })
    ).items;
    expect(new Set(pods.map((p) => p.metadata?.labels?.['app.kubernetes.io/component']))).toEqual(
      new Set(['gateway', 'worker']),
    );
    // Later gateway generations have longer names; the label on their pods still fits.
    const revisionLabel = `${gatewayName(bot, 9999)}-${'h'.repeat(10)}`;
    expect(revisionLabel.length).toBeLessThanOrEqual(63);
  }, 120_000);
});
