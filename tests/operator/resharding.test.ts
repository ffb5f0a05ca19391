// Resharding on a real control plane (controller-manager, scheduler, kwok) with the Discord
// simulator: guilds past capacity start a new gateway generation beside the old one, the cut-over
// waits until it is Ready, the session budget can hold a reshard back, a timeout rolls back, and
// Recreate and Manual do what they say. A pod watch checks at every change that some generation
// has a Ready pod for each of its shards.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  ListWatch,
  Watch,
  type KubeConfig,
} from '@kubernetes/client-node';
import { createLogger } from '../../bot/observability/logger.js';
import type { DiscordBot } from '../../operator/api/v1alpha1/types.js';
import { parseConfig } from '../../operator/config/config.js';
import { DiscordBotController } from '../../operator/controller/discordbot-controller.js';
import { OperatorMetrics } from '../../operator/metrics/operator-metrics.js';
import { KWOK_NODE_ANNOTATION, waitUntil } from '../../testenv/index.js';
import { CoverageMonitor } from './coverage-monitor.js';
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

const NS = 'reshard';
const BOT = 'ix';

/** Every status the apiserver reports for one bot, in order. */
function watchBot(kc: KubeConfig, namespace: string, name: string) {
  const seen: { phase?: string; progressing?: string; generation?: number; at: number }[] = [];
  const custom = kc.makeApiClient(CustomObjectsApi);
  const lw = new ListWatch<DiscordBot>(
    `/apis/shardwarden.io/v1alpha1/namespaces/${namespace}/discordbots`,
    new Watch(kc),
    () =>
      custom.listNamespacedCustomObject({
        group: 'shardwarden.io',
        version: 'v1alpha1',
        namespace,
        plural: 'discordbots',
      }) as never,
    false,
  );
  const record = (bot: DiscordBot) => {
    if (bot.metadata.name !== name) return;
    seen.push({
      phase: bot.status?.reshard?.phase,
      progressing: bot.status?.conditions?.find((c) => c.type === 'Progressing')?.reason,
      generation: bot.status?.gateway?.generation,
      at: Date.now(),
    });
  };
  lw.on('add', record);
  lw.on('update', record);
  return { seen, start: () => lw.start(), stop: () => lw.stop() };
}

describe('resharding (real control plane, kwok, Discord simulator)', () => {
  let h: Harness;
  let controller: DiscordBotController;
  let metrics: OperatorMetrics;
  /** The bot's sample of a gauge, read from the exposition text as Prometheus reads it. */
  const gauge = async (name: string) => {
    const text = await metrics.registry.getSingleMetricAsString(name);
    const line = text.split('\n').find((l) => l.includes(`bot="${BOT}"`));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let pods: CoverageMonitor;
  let statuses: ReturnType<typeof watchBot>;

  /** Generation `generation`'s StatefulSet rolled in place to `cpu` requests, all Ready. */
  const waitForRolled = (generation: number, cpu: string, readyReplicas: number) =>
    waitUntil(
      `generation ${generation} rolled to the new template`,
      async () => {
        const s = await apps.readNamespacedStatefulSet({
          name: `${BOT}-gateway-g${generation}`,
          namespace: NS,
        });
        return (
          s.spec?.template.spec?.containers[0]?.resources?.requests?.cpu === cpu &&
          s.status?.updateRevision === s.status?.currentRevision &&
          s.status?.readyReplicas === readyReplicas &&
          s.status?.observedGeneration === s.metadata?.generation
        );
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );

  const statefulSets = async () =>
    (
      await apps.listNamespacedStatefulSet({
        namespace: NS,
        labelSelector: `app.kubernetes.io/instance=${BOT}`,
      })
    ).items
      .map((s) => `${s.metadata?.name}:${s.spec?.replicas}`)
      .sort();
  const onlyStatefulSet = (expected: string) =>
    waitUntil(`only ${expected}`, async () => (await statefulSets()).join() === expected, {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
  /** The gateway PodDisruptionBudgets go with their generation: only `expected` is left. */
  const onlyGatewayBudget = (expected: string) =>
    waitUntil(
      `only the budget ${expected}`,
      async () =>
        h.cp
          .kubectl([
            'get',
            'pdb',
            '-n',
            NS,
            '-l',
            `app.kubernetes.io/instance=${BOT},app.kubernetes.io/component=gateway`,
            '-o',
            'name',
          ])
          .trim() === `poddisruptionbudget.policy/${expected}`,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  const phase = (p: string, generation: number, timeoutMs = 40_000) =>
    waitUntil(
      `reshard ${p}, generation ${generation}`,
      async () => {
        const s = (await readBot(h.kc, NS, BOT)).status;
        return s?.reshard?.phase === p && s.gateway?.generation === generation;
      },
      { timeoutMs, intervalMs: 200 },
    ).then(() => readBot(h.kc, NS, BOT));

  beforeAll(async () => {
    h = await startHarness({
      kwokNodes: 1,
      simulator: { seed: 8, guilds: 2_500, gateway: { maxConcurrency: 1 } },
    });
    h.cp.kubectl(['create', 'namespace', NS]);
    apps = h.kc.makeApiClient(AppsV1Api);
    core = h.kc.makeApiClient(CoreV1Api);
    const config = parseConfig(['--discord-api-url=' + h.sim.apiUrl, '--leader-elect=false'], {});
    metrics = new OperatorMetrics();
    controller = new DiscordBotController(
      h.kc,
      config,
      metrics,
      createLogger('operator-test', (process.env.OPERATOR_TEST_LOG as 'info') ?? 'silent'),
    );
    await controller.start();
    applyYaml(h.cp, [
      secret(NS, `${BOT}-discord`, { token: h.sim.token }),
      secret(NS, `${BOT}-redis`, { url: 'redis://redis.reshard:6379' }),
      exampleBot(NS, BOT, {
        sharding: { shardsPerPod: 1, clustersPerPod: 1, refreshInterval: '10s', reshardTimeout: '30s' },
        worker: { autoscaler: 'None' },
      }),
    ]);
    await waitForCondition(h.kc, NS, BOT, 'Ready', 'True', 'AllShardsReady', 90_000);
    pods = new CoverageMonitor(h.kc, NS, BOT);
    statuses = watchBot(h.kc, NS, BOT);
    await Promise.all([pods.start(), statuses.start()]);
  }, 180_000);
  afterAll(async () => {
    await pods?.stop();
    await statuses?.stop();
    await controller?.stop();
    await h?.stop();
  });

  test('too little session budget: the reshard waits, says why and until when, and touches nothing', async () => {
    expect(await statefulSets()).toEqual([`${BOT}-gateway:3`]);
    // 3 → 4 shards needs 4 + margin 5 = 9 session starts.
    h.sim.gateway.setSessionStartsRemaining(6);
    h.sim.addGuilds(1_000);
    const bot = await waitForCondition(
      h.kc,
      NS,
      BOT,
      'Progressing',
      'False',
      'WaitingForSessionBudget',
      30_000,
    );
    const message = bot.status?.conditions?.find((c) => c.type === 'Progressing')?.message ?? '';
    expect(message).toMatch(
      /^Resharding from 3 to 4 shards needs 9 session starts \(4 \+ margin 5\); Discord allows 6 until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    expect(bot.status?.reshard).toMatchObject({
      phase: 'WaitingForSessionBudget',
      fromGeneration: 1,
      toGeneration: 2,
      fromShards: 3,
      toShards: 4,
    });
    // The old generation serves on.
    expect(bot.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(bot.status).toMatchObject({
      shards: 3,
      recommendedShards: 4,
      gateway: { generation: 1, pods: 3 },
    });
    // Events are recorded beside the status write, not before it.
    await waitUntil('the budget Event', async () =>
      events(h.cp, NS, BOT).some((e) => e.reason === 'ReshardWaitingForSessionBudget'),
    );
    expect(events(h.cp, NS, BOT).find((e) => e.reason === 'ReshardWaitingForSessionBudget')).toMatchObject({
      type: 'Warning',
      message,
    });
    expect(await statefulSets()).toEqual([`${BOT}-gateway:3`]);
    expect(await gauge('shardwarden_bot_resharding')).toBe(1);
    expect(await gauge('shardwarden_bot_gateway_generation')).toBe(1);

    // A new event partition count while the reshard is pending waits for it: the pods keep
    // theirs, a condition and an Event say why; taken back, the condition goes.
    const partitionsOfPods = async () =>
      (
        await apps.readNamespacedStatefulSet({ name: `${BOT}-gateway`, namespace: NS })
      ).spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'SHARDWARDEN_EVENT_PARTITIONS')
        ?.value;
    patchBot(h.cp, NS, BOT, { redis: { eventPartitions: 4 } });
    const deferred = await waitForCondition(
      h.kc,
      NS,
      BOT,
      'EventPartitionsDeferred',
      'True',
      'Resharding',
      30_000,
    );
    expect(deferred.status?.conditions?.find((c) => c.type === 'EventPartitionsDeferred')?.message).toBe(
      'spec.redis.eventPartitions 4 waits for the reshard to finish; the pods keep 1 (changing the partition count while two gateway generations overlap could run a dispatch twice)',
    );
    await waitUntil('the deferral Event', async () =>
      events(h.cp, NS, BOT).some((e) => e.reason === 'EventPartitionsDeferred' && e.type === 'Normal'),
    );
    expect(await partitionsOfPods()).toBeUndefined();
    patchBot(h.cp, NS, BOT, { redis: { eventPartitions: 1 } });
    await waitUntil('the deferral taken back', async () => {
      const b = await readBot(h.kc, NS, BOT);
      return !b.status?.conditions?.some((c) => c.type === 'EventPartitionsDeferred');
    });
    expect(await partitionsOfPods()).toBeUndefined();
  }, 90_000);

  test('BlueGreen: with budget, generation 2 runs beside 1, takes over when Ready, and 1 is removed', async () => {
    h.sim.gateway.setSessionStartsRemaining(1_000);
    const bot = await phase('Complete', 2);
    await onlyStatefulSet(`${BOT}-gateway-g2:4`);
    await onlyGatewayBudget(`${BOT}-gateway-g2`);
    // Generation 1's pods are gone or terminating (kwok honours their grace period).
    const left = await core.listNamespacedPod({
      namespace: NS,
      labelSelector: `app.kubernetes.io/instance=${BOT},shardwarden.io/gateway-generation=1`,
    });
    expect(left.items.filter((p) => !p.metadata?.deletionTimestamp)).toEqual([]);
    expect(bot.status).toMatchObject({
      shards: 4,
      plan: { shards: 4, pods: 4 },
      gateway: { generation: 2, pods: 4, readyPods: 4 },
      reshard: { phase: 'Complete', fromGeneration: 1, toGeneration: 2, fromShards: 3, toShards: 4 },
    });
    expect(bot.status?.reshard?.startedAt).toBeDefined();
    await waitForCondition(h.kc, NS, BOT, 'Progressing', 'False', 'Stable');
    expect(await gauge('shardwarden_bot_gateway_generation')).toBe(2);
    expect(await gauge('shardwarden_bot_resharding')).toBe(0);

    // Both generations were fully Ready at once, and at no change was a shard without a Ready pod.
    expect(pods.sawBoth(1, 2)).toBe(true);
    expect(pods.gaps()).toEqual([]);
    expect(pods.errors).toEqual([]);
    // The status said so on the way: Resharding while generation 2 started.
    const started = statuses.seen.find((s) => s.phase === 'StartingNewGeneration');
    expect(started).toMatchObject({ progressing: 'Resharding', generation: 1 });
    const done = statuses.seen.find((s) => s.phase === 'Complete');
    console.log(
      `BlueGreen 3 -> 4 shards: ${done!.at - started!.at} ms from StartingNewGeneration to Complete (seen by a watch); ${pods.samples.length} pod changes checked, no gap`,
    );
    await waitUntil('reshard Events', async () =>
      ['ReshardStarted', 'ReshardComplete', 'PlanChanged'].every((r) =>
        events(h.cp, NS, BOT).some((e) => e.reason === r),
      ),
    );
    const cm = await core.readNamespacedConfigMap({ name: `${BOT}-plan`, namespace: NS });
    expect(cm.data).toMatchObject({ generation: '2', shards: '4' });
    expect(cm.data?.['next.json']).toBeUndefined();
  }, 60_000);

  test('a new generation that is not Ready in time is rolled back; the old one serves throughout', async () => {
    // Room for the 4 pods of generation 2 and 2 more: of generation 3's 6 pods, 4 stay Pending.
    patchBot(h.cp, NS, BOT, {
      gateway: { resources: { requests: { cpu: '5' } } },
      sharding: { reshardTimeout: '5s' },
    });
    await waitForRolled(2, '5', 4);
    await waitForCondition(h.kc, NS, BOT, 'Ready', 'True');
    pods.reset(); // the in-place roll above is not a reshard
    patchBot(h.cp, NS, BOT, { sharding: { mode: 'Fixed', shards: 6 } });
    await waitUntil(
      'generation 3 started',
      async () => (await statefulSets()).includes(`${BOT}-gateway-g3:6`),
      {
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    );
    const bot = await phase('RolledBack', 2, 30_000);
    expect(bot.status?.reshard?.message).toMatch(
      /^Generation 3 was not Ready within 5 s \([0-5]\/6 pods Ready\); rolled back to generation 2, retrying after the same time$/,
    );
    expect(
      (await waitForEvent(h.cp, NS, BOT, 'rolled back', (e) => e.reason === 'ReshardRolledBack')).type,
    ).toBe('Warning');
    await onlyStatefulSet(`${BOT}-gateway-g2:4`);
    expect(pods.gaps()).toEqual([]);
    expect(pods.errors).toEqual([]);
    const after = await waitForCondition(h.kc, NS, BOT, 'Progressing', 'False', 'ReshardRolledBack');
    expect(after.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    // Back to the running count: the rollback stays as history, nothing is pending.
    patchBot(h.cp, NS, BOT, { gateway: { resources: null }, sharding: { mode: 'Auto', shards: 0 } });
    await waitForCondition(h.kc, NS, BOT, 'Progressing', 'False', 'Stable', 30_000);
  }, 90_000);

  test('Manual reports the needed change and does nothing else', async () => {
    patchBot(h.cp, NS, BOT, { sharding: { mode: 'Fixed', shards: 5, reshardStrategy: 'Manual' } });
    const bot = await waitForCondition(h.kc, NS, BOT, 'Progressing', 'False', 'ReshardNeeded');
    expect(bot.status?.reshard).toMatchObject({
      phase: 'ManualActionRequired',
      toShards: 5,
      toGeneration: 3,
    });
    expect(
      (await waitForEvent(h.cp, NS, BOT, 'reshard needed', (e) => e.reason === 'ReshardNeeded')).type,
    ).toBe('Warning');
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await statefulSets()).toEqual([`${BOT}-gateway-g2:4`]);
    expect((await readBot(h.kc, NS, BOT)).status?.shards).toBe(4);
  }, 30_000);

  test('Recreate replaces the generation: the old one goes as the new one starts', async () => {
    patchBot(h.cp, NS, BOT, { sharding: { reshardStrategy: 'Recreate' } });
    const bot = await phase('Complete', 3);
    await onlyStatefulSet(`${BOT}-gateway-g3:5`);
    await onlyGatewayBudget(`${BOT}-gateway-g3`);
    expect(bot.status).toMatchObject({ shards: 5, gateway: { generation: 3, pods: 5 } });
    const replacing =
      'Replacing generation 2 with generation 3 (5 shards); shards are offline until it is Ready';
    await waitForEvent(h.cp, NS, BOT, replacing, (e) => e.message === replacing);
    await waitForCondition(h.kc, NS, BOT, 'Ready', 'True', 'AllShardsReady');
  }, 60_000);

  test('an operator restarted in the middle of a BlueGreen reshard carries on from the status', async () => {
    // 5 pods of 5 CPUs on a 32-CPU node: generation 4 (6 pods) gets 1 pod and waits for room.
    patchBot(h.cp, NS, BOT, {
      gateway: { resources: { requests: { cpu: '5' } } },
      sharding: { reshardStrategy: 'BlueGreen', reshardTimeout: '5m' },
    });
    await waitForRolled(3, '5', 5);
    pods.reset();
    patchBot(h.cp, NS, BOT, { sharding: { shards: 6 } });
    await phase('StartingNewGeneration', 3, 20_000);
    await controller.stop();
    const startedEvents = events(h.cp, NS, BOT).filter((e) => e.reason === 'ReshardStarted').length;
    // A new operator: nothing in memory, only the status and the cluster.
    controller = new DiscordBotController(
      h.kc,
      parseConfig(['--discord-api-url=' + h.sim.apiUrl, '--leader-elect=false'], {}),
      new OperatorMetrics(),
      createLogger('operator-test', (process.env.OPERATOR_TEST_LOG as 'info') ?? 'silent'),
    );
    await controller.start();
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await statefulSets()).toEqual([`${BOT}-gateway-g3:5`, `${BOT}-gateway-g4:6`]);
    // Room for generation 4: a second kwok node.
    applyYaml(h.cp, [
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: 'kwok-node-extra',
          annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
          labels: { 'kubernetes.io/hostname': 'kwok-node-extra', 'kubernetes.io/os': 'linux', type: 'kwok' },
        },
        spec: {},
        status: {
          allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
          capacity: { cpu: '32', memory: '256Gi', pods: '110' },
          phase: 'Running',
        },
      },
    ]);
    const bot = await phase('Complete', 4, 40_000);
    expect(bot.status?.reshard).toMatchObject({ fromGeneration: 3, toGeneration: 4, toShards: 6 });
    await onlyStatefulSet(`${BOT}-gateway-g4:6`);
    expect(pods.gaps()).toEqual([]);
    expect(pods.sawBoth(3, 4)).toBe(true);
    // The restarted operator did not start the reshard again.
    expect(events(h.cp, NS, BOT).filter((e) => e.reason === 'ReshardStarted')).toHaveLength(startedEvents);
  }, 90_000);
});
