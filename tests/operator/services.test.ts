// The Services the operator creates: headless where no virtual IP is needed, the public one only
// while worker.publicUrl is set, and so more bots converge than the test control plane's service
// range (254 addresses) could give two virtual IPs each.
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { createLogger } from '../../bot/observability/logger.js';
import type { DiscordBot } from '../../operator/api/v1alpha1/types.js';
import { parseConfig } from '../../operator/config/config.js';
import { DiscordBotController } from '../../operator/controller/discordbot-controller.js';
import { OperatorMetrics } from '../../operator/metrics/operator-metrics.js';
import { waitUntil } from '../../testenv/index.js';
import { applyYaml, exampleBot, patchBot, secret, startHarness, type Harness } from './harness.js';

const NS = 'many';
const BOTS = 300;

describe('worker Services (real apiserver)', () => {
  let h: Harness;
  let controller: DiscordBotController;
  let core: CoreV1Api;

  beforeAll(async () => {
    // No controller-manager: Services take their addresses in the apiserver, and 300 bots'
    // workloads would only load a shared 2-core machine.
    h = await startHarness({ controllers: false, simulator: { guilds: 10, tokens: ['many-token'] } });
    h.cp.kubectl(['create', 'namespace', NS]);
    core = h.kc.makeApiClient(CoreV1Api);
    const config = parseConfig(
      // More reconciles at once than the default: on a loaded machine each waits on the apiserver.
      // The resync is longer than the test waits: a bot that only the resync would wake (a lost
      // requeue, as when a rate-limited bot was told to wait the whole 1 h refresh) fails the
      // test instead of passing 5 min late.
      [
        '--discord-api-url=' + h.sim.apiUrl,
        '--leader-elect=false',
        '--resync-period=1h',
        '--max-concurrent-reconciles=16',
      ],
      {},
    );
    controller = new DiscordBotController(
      h.kc,
      config,
      new OperatorMetrics(),
      createLogger('operator-test', 'silent'),
    );
    await controller.start();
    applyYaml(h.cp, [
      secret(NS, 'shared-discord', { token: 'many-token' }),
      secret(NS, 'shared-redis', { url: 'redis://redis.many:6379' }),
    ]);
  }, 180_000);
  afterAll(async () => {
    await controller?.stop();
    await h?.stop();
  });

  const bot = (name: string, worker: Record<string, unknown> = {}) =>
    exampleBot(NS, name, {
      tokenSecretRef: { name: 'shared-discord' },
      redis: { urlSecretRef: { name: 'shared-redis' } },
      worker,
    });
  const serviceNames = async (instance: string) =>
    (
      await core.listNamespacedService({
        namespace: NS,
        labelSelector: `app.kubernetes.io/instance=${instance}`,
      })
    ).items
      .map((s) => s.metadata!.name!)
      .sort();

  test('the public Service exists only while worker.publicUrl is set', async () => {
    applyYaml(h.cp, [bot('caladan', { publicUrl: 'https://caladan.example' })]);
    await waitUntil(
      'caladan-worker-public',
      async () => (await serviceNames('caladan')).includes('caladan-worker-public'),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const pub = await core.readNamespacedService({ name: 'caladan-worker-public', namespace: NS });
    expect(pub.spec?.clusterIP).not.toBe('None');
    const metrics = await core.readNamespacedService({ name: 'caladan-worker-metrics', namespace: NS });
    expect(metrics.spec?.clusterIP).toBe('None');

    h.cp.kubectl([
      'patch',
      'dbot',
      'caladan',
      '-n',
      NS,
      '--type=json',
      '-p',
      '[{"op":"remove","path":"/spec/worker/publicUrl"}]',
    ]);
    await waitUntil(
      'caladan-worker-public removed',
      async () => !(await serviceNames('caladan')).includes('caladan-worker-public'),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(await serviceNames('caladan')).toEqual(['caladan-gateway', 'caladan-worker-metrics']);

    patchBot(h.cp, NS, 'caladan', { worker: { publicUrl: 'https://caladan.example/again' } });
    await waitUntil(
      'caladan-worker-public back',
      async () => (await serviceNames('caladan')).includes('caladan-worker-public'),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  });

  test('a worker metrics Service with a virtual IP (an older release made it) is recreated headless', async () => {
    // What an older release left: the Service with a ClusterIP, under the operator's labels.
    await core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: {
          name: 'giedi-worker-metrics',
          labels: {
            'app.kubernetes.io/name': 'discordbot',
            'app.kubernetes.io/instance': 'giedi',
            'app.kubernetes.io/component': 'worker',
            'app.kubernetes.io/managed-by': 'shardwarden',
          },
        },
        spec: { ports: [{ name: 'http', port: 8080 }] },
      },
    });
    applyYaml(h.cp, [bot('giedi')]);
    await waitUntil(
      'giedi-worker-metrics headless',
      async () =>
        (await core.readNamespacedService({ name: 'giedi-worker-metrics', namespace: NS })).spec
          ?.clusterIP === 'None',
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  });

  test(`${BOTS} bots converge, more than the service range could give a virtual IP each`, async () => {
    applyYaml(
      h.cp,
      Array.from({ length: BOTS }, (_, i) => bot(`bot-${i}`)),
    );
    const custom = h.kc.makeApiClient(CustomObjectsApi);
    let converged = 0;
    await waitUntil(
      `${BOTS} bots with a plan for their current generation`,
      async () => {
        const list = (await custom.listNamespacedCustomObject({
          group: 'shardwarden.io',
          version: 'v1alpha1',
          namespace: NS,
          plural: 'discordbots',
        })) as { items: DiscordBot[] };
        converged = list.items.filter(
          (b) =>
            b.metadata.name.startsWith('bot-') &&
            b.status?.plan &&
            b.status.observedGeneration === b.metadata.generation,
        ).length;
        return converged === BOTS;
      },
      { timeoutMs: 1_200_000, intervalMs: 2_000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message} (${converged}/${BOTS} converged)`);
    });
    const services = (await core.listNamespacedService({ namespace: NS })).items.filter((s) =>
      s.metadata!.name!.startsWith('bot-'),
    );
    expect(services).toHaveLength(2 * BOTS);
    expect(services.filter((s) => s.spec?.clusterIP !== 'None')).toEqual([]);
  }, 1_500_000);
});
