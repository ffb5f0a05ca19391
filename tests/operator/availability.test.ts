// Availability defaults on a real control plane with kwok nodes: the gateway pods spread over
// nodes, and a drain through the eviction API takes one gateway pod at a time, because the
// PodDisruptionBudget the operator renders refuses the next eviction (429) until the replacement
// is Ready again.
import { CoreV1Api } from '@kubernetes/client-node';
import type { DiscordBotController } from '../../operator/controller/discordbot-controller.js';
import { apiserverCode, describeError } from '../../operator/kube/cluster.js';
import { waitUntil } from '../../testenv/index.js';
import { applyYaml, exampleBot, secret, startHarness, startOperator, type Harness } from './harness.js';

const NS = 'availability';
const BOT = 'steady';
const NODES = ['kwok-node-0', 'kwok-node-1'];

interface Budget {
  spec: { maxUnavailable?: number };
  status?: { disruptionsAllowed?: number; currentHealthy?: number; observedGeneration?: number };
}

describe('PodDisruptionBudgets and spread over nodes (control plane with kwok nodes)', () => {
  let h: Harness;
  let controller: DiscordBotController;
  let core: CoreV1Api;

  const budget = (name: string) =>
    JSON.parse(h.cp.kubectl(['get', 'pdb', name, '-n', NS, '-o', 'json'])) as Budget;
  const gatewayPods = () =>
    (
      JSON.parse(
        h.cp.kubectl([
          'get',
          'pods',
          '-n',
          NS,
          '-l',
          `app.kubernetes.io/instance=${BOT},app.kubernetes.io/component=gateway`,
          '-o',
          'json',
        ]),
      ) as {
        items: {
          metadata: { name: string; deletionTimestamp?: string };
          spec: { nodeName?: string };
          status: { conditions?: { type: string; status: string }[] };
        }[];
      }
    ).items;
  const ready = (p: ReturnType<typeof gatewayPods>[number]) =>
    !p.metadata.deletionTimestamp &&
    !!p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  /** Evicts a pod as `kubectl drain` does; resolves to the HTTP status and the apiserver's words. */
  const evict = async (name: string): Promise<{ code: number; message: string }> => {
    try {
      await core.createNamespacedPodEviction({
        name,
        namespace: NS,
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: NS } },
      });
      return { code: 201, message: '' };
    } catch (err) {
      return { code: apiserverCode(err) ?? 0, message: describeError(err) };
    }
  };
  const budgetAllows = (n: number) =>
    waitUntil(
      `PodDisruptionBudget ${BOT}-gateway allows ${n} disruption(s) of 3 healthy pods`,
      async () => {
        const s = budget(`${BOT}-gateway`).status;
        return s?.disruptionsAllowed === n && s.currentHealthy === 3;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );

  beforeAll(async () => {
    h = await startHarness({ kwokNodes: NODES.length });
    h.cp.kubectl(['create', 'namespace', NS]);
    core = h.kc.makeApiClient(CoreV1Api);
    controller = await startOperator(h);
    applyYaml(h.cp, [
      secret(NS, `${BOT}-discord`, { token: h.sim.token }),
      secret(NS, `${BOT}-redis`, { url: 'redis://127.0.0.1:6379' }),
      exampleBot(NS, BOT, {
        sharding: { mode: 'Fixed', shards: 3, shardsPerPod: 1, clustersPerPod: 1 },
        worker: { autoscaler: 'None' },
      }),
    ]);
  }, 180_000);
  afterAll(async () => {
    await controller?.stop();
    await h?.stop();
  });

  test('the bot owns a budget for its gateway generation and one for its workers; the gateway pods spread over the nodes', async () => {
    await waitUntil('3 Ready gateway pods', async () => gatewayPods().filter(ready).length === 3, {
      timeoutMs: 90_000,
      intervalMs: 500,
    });
    // The pods can be Ready before the operator's pass has applied the budgets after them.
    const exists = (name: string) =>
      h.cp.kubectl(['get', 'pdb', '-n', NS, '-o', 'name']).includes(`/${name}\n`);
    await waitUntil('both budgets', async () => exists(`${BOT}-gateway`) && exists(`${BOT}-worker`));
    expect(budget(`${BOT}-gateway`).spec.maxUnavailable).toBe(1);
    expect(budget(`${BOT}-worker`).spec.maxUnavailable).toBe(1);
    expect(new Set(gatewayPods().map((p) => p.spec.nodeName))).toEqual(new Set(NODES));
  }, 120_000);

  test('a drain evicts one gateway pod; the next eviction is refused (429) until the replacement is Ready', async () => {
    await budgetAllows(1);
    // Every node cordoned (a drain of the whole pool): the evicted pod's replacement cannot run.
    for (const node of NODES) h.cp.kubectl(['cordon', node]);
    const [first, second] = gatewayPods().map((p) => p.metadata.name);
    expect(await evict(first!)).toEqual({ code: 201, message: '' });
    const refused = await evict(second!);
    expect(refused.code).toBe(429);
    expect(refused.message).toContain("Cannot evict pod as it would violate the pod's disruption budget");
    expect(gatewayPods().find((p) => p.metadata.name === second)?.metadata.deletionTimestamp).toBeUndefined();

    // The drain goes on once the replacement runs somewhere.
    for (const node of NODES) h.cp.kubectl(['uncordon', node]);
    await budgetAllows(1);
    expect((await evict(second!)).code).toBe(201);
  }, 180_000);
});
