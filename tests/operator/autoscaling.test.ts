// Worker autoscaling against real services: BullMQ jobs in a real Redis size the worker
// Deployment on a real apiserver; KEDA mode is checked against KEDA's CRD shapes.
import { join } from 'node:path';
import { AppsV1Api, CustomObjectsApi, type V1Deployment } from '@kubernetes/client-node';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createLogger } from '../../bot/observability/logger.js';
import { legacyQueuePrefix, QUEUES, queuePrefix } from '../../bot/queues/queue-names.js';
import { parseConfig } from '../../operator/config/config.js';
import { DiscordBotController } from '../../operator/controller/discordbot-controller.js';
import { OperatorMetrics } from '../../operator/metrics/operator-metrics.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';
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

const NS = 'scaling';
const BOT = 'brain';

describe('worker autoscaling (real apiserver, Redis with BullMQ jobs)', () => {
  let h: Harness;
  let redis: RedisServer;
  let controller: DiscordBotController;
  let metrics: OperatorMetrics;
  let apps: AppsV1Api;
  let queues: Queue[];

  const deployment = () => apps.readNamespacedDeployment({ name: `${BOT}-worker`, namespace: NS });
  const replicas = async () => (await deployment()).spec?.replicas;
  const ownsReplicas = (d: V1Deployment, manager: string) =>
    !!d.metadata?.managedFields?.some(
      (m) =>
        m.manager === manager &&
        !!(m.fieldsV1 as { 'f:spec'?: Record<string, unknown> })?.['f:spec']?.['f:replicas'],
    );
  const addJobs = async (queue: Queue, n: number, opts: { delay?: number; priority?: number } = {}) =>
    queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'job', data: { i }, opts })));

  beforeAll(async () => {
    [h, redis] = await Promise.all([startHarness({ simulator: { seed: 3, guilds: 500 } }), startRedis()]);
    h.cp.kubectl(['create', 'namespace', NS]);
    apps = h.kc.makeApiClient(AppsV1Api);
    metrics = new OperatorMetrics();
    const config = parseConfig(
      ['--discord-api-url=' + h.sim.apiUrl, '--leader-elect=false', '--autoscale-interval=500ms'],
      {},
    );
    controller = new DiscordBotController(h.kc, config, metrics, createLogger('operator-test', 'silent'));
    await controller.start();
    const prefix = queuePrefix({ namespace: NS, name: BOT });
    queues = [QUEUES.interactions, QUEUES.events].map((name) => {
      const q = new Queue(name, { prefix, connection: { url: redis.url } });
      q.on('error', () => undefined); // Redis is stopped on purpose in one test
      return q;
    });
    applyYaml(h.cp, [
      secret(NS, `${BOT}-discord`, { token: h.sim.token }),
      secret(NS, `${BOT}-redis`, { url: redis.url }),
      exampleBot(NS, BOT, {
        worker: {
          minReplicas: 1,
          maxReplicas: 5,
          targetJobsPerReplica: 10,
          scaleDownStabilizationSeconds: 3,
          terminationGracePeriodSeconds: 90,
        },
      }),
    ]);
  }, 180_000);
  afterAll(async () => {
    await Promise.all((queues ?? []).map((q) => q.close()));
    await controller?.stop();
    await Promise.all([h?.stop(), redis?.close()]);
  });

  test('an idle bot gets minReplicas workers, a grace period from the spec and a WorkersScaled condition', async () => {
    const bot = await waitForCondition(h.kc, NS, BOT, 'WorkersScaled', 'True', 'AtDesired');
    expect(bot.status?.workers).toMatchObject({ autoscaler: 'Builtin', backlog: 0, desiredReplicas: 1 });
    const d = await deployment();
    expect(d.spec?.replicas).toBe(1);
    expect(d.spec?.template.spec?.terminationGracePeriodSeconds).toBe(90);
    const env = d.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'SHARDWARDEN_SHUTDOWN_TIMEOUT_MS')?.value).toBe('80000');
  });

  test('the deprecated targetBacklogPerReplica is ignored, named in WorkersScaled and warned about once', async () => {
    // A bot created before batching holds the old field (the apiserver stored its default, 200).
    patchBot(h.cp, NS, BOT, { worker: { targetBacklogPerReplica: 200 } });
    const note =
      'spec.worker.targetBacklogPerReplica (200) is deprecated and ignored; targetJobsPerReplica (10 queued jobs, a batch of events being one) is used: remove the old field';
    await waitUntil('the note in WorkersScaled', async () => {
      const c = (await readBot(h.kc, NS, BOT)).status?.conditions?.find((x) => x.type === 'WorkersScaled');
      return !!c?.message.includes(note) && c.message.includes('target 10 jobs per replica');
    });
    await waitForEvent(h.cp, NS, BOT, 'DeprecatedField', (e) => e.reason === 'DeprecatedField');
    // Later passes (every 0.5 s) keep the note without another Event.
    const seen = (await readBot(h.kc, NS, BOT)).status?.workers?.backlog;
    await waitUntil('two more passes', async () => {
      await addJobs(queues[1]!, 1);
      return ((await readBot(h.kc, NS, BOT)).status?.workers?.backlog ?? 0) >= (seen ?? 0) + 2;
    });
    expect(events(h.cp, NS, BOT).filter((e) => e.reason === 'DeprecatedField')).toHaveLength(1);
    await queues[1]!.obliterate({ force: true });
    patchBot(h.cp, NS, BOT, { worker: { targetBacklogPerReplica: null } });
    await waitUntil('the note gone', async () => {
      const c = (await readBot(h.kc, NS, BOT)).status?.conditions?.find((x) => x.type === 'WorkersScaled');
      return c?.reason === 'AtDesired' && !c.message.includes('deprecated');
    });
  });

  test('a backlog scales the workers up at once; after it drains, down only after the window', async () => {
    const [interactions, eventsQueue] = queues as [Queue, Queue];
    // The 35 last: a reading between the additions then sees at most 3 (still 1 worker), never
    // 35 without the 3.
    await addJobs(eventsQueue, 3, { priority: 5 });
    // Not due for an hour: not backlog.
    await addJobs(eventsQueue, 50, { delay: 3_600_000 });
    await addJobs(interactions, 35);
    await waitUntil('4 workers', async () => (await replicas()) === 4, {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    // The status is written after the Deployment, and the Event after the status.
    await waitUntil('status shows the scale', async () => {
      const workers = (await readBot(h.kc, NS, BOT)).status?.workers;
      return workers?.backlog === 38 && workers.desiredReplicas === 4 && workers.lastScaleTime !== undefined;
    });
    const scaled = 'Scaled workers from 1 to 4 (backlog 38, target 10 jobs per replica, bounds 1..5)';
    await waitForEvent(h.cp, NS, BOT, scaled, (e) => e.message === scaled);
    expect(await metrics.registry.getSingleMetricAsString('shardwarden_operator_worker_backlog')).toContain(
      `shardwarden_operator_worker_backlog{namespace="${NS}",name="${BOT}"} 38`,
    );
    expect(
      await metrics.registry.getSingleMetricAsString('shardwarden_operator_worker_desired_replicas'),
    ).toContain(`{namespace="${NS}",name="${BOT}"} 4`);

    await Promise.all(queues.map((q) => q.obliterate({ force: true })));
    const drainedAt = Date.now();
    const stabilizing = await waitForCondition(
      h.kc,
      NS,
      BOT,
      'WorkersScaled',
      'True',
      'StabilizingScaleDown',
    );
    // In the same status: no backlog, yet 4 workers kept. (The Deployment is not read here: on
    // a loaded machine the window may have ended by the time this test reads it.)
    expect(stabilizing.status?.workers).toMatchObject({ backlog: 0, desiredReplicas: 4 });
    // The condition names when the window (3 s from the last reading that asked for 4) ends.
    const message = stabilizing.status?.conditions?.find((c) => c.type === 'WorkersScaled')?.message ?? '';
    const announced = /go down at (\S+Z) unless demand rises/.exec(message)?.[1];
    expect(announced).toBeDefined();
    await waitUntil('1 worker', async () => (await replicas()) === 1, { timeoutMs: 20_000, intervalMs: 100 });
    console.log(
      `scale-down 4 -> 1 came ${Date.now() - drainedAt} ms after the drain (window 3 s, interval 0.5 s)`,
    );
    // Not before the window ended. (Not timed from the drain: on a loaded machine the last
    // reading that saw the backlog can come well before it, and the window runs from that one.)
    let scaledAt: string | undefined;
    await waitUntil('the scale-down in the status', async () => {
      const workers = (await readBot(h.kc, NS, BOT)).status?.workers;
      scaledAt = workers?.desiredReplicas === 1 ? workers.lastScaleTime : undefined;
      return scaledAt !== undefined;
    });
    expect(Date.parse(scaledAt!)).toBeGreaterThanOrEqual(Date.parse(announced!));
    await waitUntil('ScaledDown Event', async () =>
      events(h.cp, NS, BOT).some(
        (e) =>
          e.message === 'Scaled workers from 4 to 1 (backlog 0, target 10 jobs per replica, bounds 1..5)',
      ),
    );
  }, 60_000);

  test('Redis down: a condition without the URL, and the replicas stay', async () => {
    await addJobs(queues[0]!, 25);
    await waitUntil('3 workers', async () => (await replicas()) === 3, {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    await redis.stop();
    const bot = await waitForCondition(h.kc, NS, BOT, 'WorkersScaled', 'False', 'RedisUnavailable', 20_000);
    const message = bot.status?.conditions?.find((c) => c.type === 'WorkersScaled')?.message ?? '';
    expect(message).toContain(`Cannot read the job backlog from Redis (Secret ${NS}/${BOT}-redis key "url")`);
    expect(message).toContain('workers stay at 3');
    expect(message).not.toContain(redis.url);
    // Longer than the window: without a backlog reading nothing is scaled down.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(await replicas()).toBe(3);
    expect(events(h.cp, NS, BOT).filter((e) => e.reason === 'RedisUnavailable')).toHaveLength(1);
    // Back (empty: no persistence): the reader reconnects and the window runs again.
    await redis.start();
    await waitForCondition(h.kc, NS, BOT, 'WorkersScaled', 'True', undefined, 20_000);
    await waitUntil('1 worker', async () => (await replicas()) === 1, { timeoutMs: 20_000, intervalMs: 200 });
  }, 60_000);

  test('KEDA without its CRDs says so; with them, a valid ScaledObject and replicas left alone', async () => {
    patchBot(h.cp, NS, BOT, { worker: { autoscaler: 'KEDA' } });
    const missing = await waitForCondition(h.kc, NS, BOT, 'WorkersScaled', 'False', 'KEDANotInstalled');
    expect(missing.status?.workers?.desiredReplicas).toBeUndefined();
    await h.cp.applyCrds(join(import.meta.dirname, 'fixtures', 'keda-crds.yaml'));
    await waitForCondition(h.kc, NS, BOT, 'WorkersScaled', 'True', 'ScaledByKEDA', 30_000);

    const custom = h.kc.makeApiClient(CustomObjectsApi);
    const so = (await custom.getNamespacedCustomObject({
      group: 'keda.sh',
      version: 'v1alpha1',
      namespace: NS,
      plural: 'scaledobjects',
      name: `${BOT}-worker`,
    })) as { spec: Record<string, unknown> };
    const prefix = queuePrefix({ namespace: NS, name: BOT });
    expect(so.spec).toMatchObject({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: `${BOT}-worker` },
      minReplicaCount: 1,
      maxReplicaCount: 5,
      advanced: {
        horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: 3 } } },
      },
    });
    expect(
      (so.spec.triggers as { metadata: Record<string, string> }[]).map((t) => t.metadata.listName),
    ).toEqual(
      // No other bot is named brain: the old keys' lists (releases before namespaced keys) too.
      [
        `${prefix}:interactions:wait`,
        `${prefix}:event-batches:wait`,
        `${prefix}:events:wait`,
        `${prefix}:tasks:wait`,
        // Releases before namespaced keys wrote no batches.
        ...['interactions', 'events', 'tasks'].map((q) => `${legacyQueuePrefix(BOT)}:${q}:wait`),
      ],
    );
    const ta = (await custom.getNamespacedCustomObject({
      group: 'keda.sh',
      version: 'v1alpha1',
      namespace: NS,
      plural: 'triggerauthentications',
      name: `${BOT}-worker`,
    })) as { spec: { secretTargetRef: { parameter: string; name: string }[] } };
    expect(ta.spec.secretTargetRef.map((r) => [r.parameter, r.name])).toEqual([
      ['address', `${BOT}-keda-redis`],
    ]);
    const auth = JSON.parse(h.cp.kubectl(['get', 'secret', `${BOT}-keda-redis`, '-n', NS, '-o', 'json']));
    expect(Buffer.from(auth.data.address, 'base64').toString()).toBe(`127.0.0.1:${redis.port}`);

    // The operator gave up spec.replicas without resetting it; KEDA's HPA (here: kubectl) owns it.
    await waitUntil(
      'replicas handed over',
      async () => !ownsReplicas(await deployment(), 'shardwarden-operator'),
    );
    expect(await replicas()).toBe(1);
    h.cp.kubectl(['scale', 'deployment', `${BOT}-worker`, '-n', NS, '--replicas=7']);
    h.cp.kubectl(['annotate', 'dbot', BOT, '-n', NS, 'poke=1']);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await replicas()).toBe(7);
  }, 90_000);

  test('None removes the ScaledObject and never writes replicas; back to Builtin takes them again', async () => {
    patchBot(h.cp, NS, BOT, { worker: { autoscaler: 'None' } });
    await waitUntil(
      'ScaledObject removed',
      async () =>
        h.cp.kubectl(['get', 'scaledobjects,triggerauthentications', '-n', NS, '-o', 'name']).trim() === '',
    );
    // The status and the KEDA Secret follow within the same reconcile, after the ScaledObject.
    await waitUntil('status and Secret follow', async () => {
      const bot = await readBot(h.kc, NS, BOT);
      return (
        bot.status?.workers?.autoscaler === 'None' &&
        !bot.status.conditions?.some((c) => c.type === 'WorkersScaled') &&
        !h.cp.kubectl(['get', 'secret', '-n', NS, '-o', 'name']).includes(`${BOT}-keda-redis`)
      );
    });
    await waitForEvent(h.cp, NS, BOT, 'ScaledObjectRemoved', (e) => e.reason === 'ScaledObjectRemoved');
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await replicas()).toBe(7);

    patchBot(h.cp, NS, BOT, { worker: { autoscaler: 'Builtin' } });
    // 7 is above maxReplicas (5): corrected at once, then down to 1 after the window.
    await waitUntil('1 worker', async () => (await replicas()) === 1, { timeoutMs: 20_000, intervalMs: 200 });
    await waitUntil('ScaledDown Event', async () =>
      events(h.cp, NS, BOT).some(
        (e) =>
          e.message === 'Scaled workers from 7 to 5 (backlog 0, target 10 jobs per replica, bounds 1..5)',
      ),
    );
  }, 60_000);

  test('deleting the bot closes its Redis connection and drops its series', async () => {
    h.cp.kubectl(['delete', 'dbot', BOT, '-n', NS]);
    await waitUntil(
      'series removed',
      async () =>
        !(await metrics.registry.getSingleMetricAsString('shardwarden_operator_worker_backlog')).includes(
          BOT,
        ),
    );
    const client = new Redis(redis.url);
    try {
      await waitUntil('connection closed', async () => {
        const clients = (await client.client('LIST')) as string;
        return !clients.includes('shardwarden-operator-autoscaler');
      });
    } finally {
      client.disconnect();
    }
  }, 30_000);
});
