// The operator holding only what the chart's ClusterRole grants, on an apiserver with the
// OwnerReferencesPermissionEnforcement admission plugin (as many managed clusters run it): the
// owned objects are created, a missing rule is reported in status rather than swallowed, and KEDA
// mode without its RBAC (rbac.keda: false) still brings up the gateway and the workers.
import { join } from 'node:path';
import type { DiscordBotController } from '../../operator/controller/discordbot-controller.js';
import { waitUntil } from '../../testenv/index.js';
import { renderChart } from '../install/helm.js';
import {
  applyYaml,
  exampleBot,
  patchBot,
  readBot,
  secret,
  startHarness,
  startOperator,
  waitForCondition,
  waitForEvent,
  type Harness,
} from './harness.js';

const NS = 'permissions';
const OPERATOR_USER = 'shardwarden-operator';
const ROLE = 'operator-under-test';
const REDIS_PASSWORD = 'not-in-any-status';

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };

/** The rules of the chart's ClusterRole rendered with these `--set` values. */
function chartRules(values: string[] = []): Rule[] {
  const role = renderChart(values.flatMap((v) => ['--set', v])).docs.find((d) => d.kind === 'ClusterRole');
  return role!.rules as Rule[];
}

describe("the operator with the chart's RBAC (OwnerReferencesPermissionEnforcement on)", () => {
  let h: Harness;
  let controller: DiscordBotController;

  /** Makes `rules` all that the operator's user may do. */
  /** Whether the operator's user may do `verb` on `resource` in the test namespace now. */
  const may = (verb: string, resource: string, subresource?: string) => {
    const args = ['auth', 'can-i', verb, resource, '-n', NS, '--as', OPERATOR_USER];
    try {
      return h.cp.kubectl(subresource ? [...args, `--subresource=${subresource}`] : args).trim() === 'yes';
    } catch {
      return false; // can-i exits 1 with "no"
    }
  };
  /** Grants `rules`, then waits until the apiserver's authorizer has the change (`probe`). */
  const grant = async (
    rules: Rule[],
    probe: [verb: string, resource: string, allowed: boolean, sub?: string],
  ) => {
    writeRole(rules);
    const [verb, resource, allowed, sub] = probe;
    await waitUntil(
      `${verb} ${resource} ${allowed ? 'allowed' : 'refused'}`,
      async () => may(verb, resource, sub) === allowed,
      {
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    );
  };
  const writeRole = (rules: Rule[]) =>
    applyYaml(h.cp, [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: ROLE }, rules },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: ROLE },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: ROLE },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: OPERATOR_USER }],
      },
    ]);
  const exists = (kind: string, name: string) =>
    h.cp.kubectl(['get', kind, '-n', NS, '-o', 'name']).includes(`/${name}\n`);
  const ownedObjects = (bot: string) => [
    ['statefulset', `${bot}-gateway`],
    ['deployment', `${bot}-worker`],
    ['service', `${bot}-gateway`],
    ['service', `${bot}-worker-metrics`],
    ['configmap', `${bot}-plan`],
  ];
  const botWithSecrets = (name: string, worker: Record<string, unknown>) => [
    secret(NS, `${name}-discord`, { token: h.sim.token }),
    secret(NS, `${name}-redis`, { url: `redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0` }),
    exampleBot(NS, name, { worker }),
  ];

  beforeAll(async () => {
    h = await startHarness({
      controllers: false,
      admissionPlugins: ['OwnerReferencesPermissionEnforcement'],
    });
    await h.cp.applyCrds(join(import.meta.dirname, 'fixtures', 'keda-crds.yaml'));
    h.cp.kubectl(['create', 'namespace', NS]);
    // The chart's rules, less the one under test: the operator starts (it may watch everything).
    await grant(
      chartRules().filter((r) => !r.resources.includes('discordbots/finalizers')),
      ['update', 'discordbots.shardwarden.io', false, 'finalizers'],
    );
    controller = await startOperator(
      h,
      // A granted permission is noticed at the next resync or retry, whichever comes first.
      ['--autoscale-interval=500ms', '--resync-period=3s'],
      h.cp.userKubeConfig(OPERATOR_USER),
    );
  }, 180_000);
  afterAll(async () => {
    await controller?.stop();
    await h?.stop();
  });

  test('without discordbots/finalizers the owned objects are refused and say why; with the chart rule they are created', async () => {
    applyYaml(h.cp, botWithSecrets('owned', { autoscaler: 'None' }));
    const refused = await waitForCondition(h.kc, NS, 'owned', 'Ready', 'False', 'ApplyFailed');
    expect(refused.status?.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(
      /cannot set blockOwnerDeletion/,
    );
    for (const [kind, name] of ownedObjects('owned')) expect(exists(kind!, name!)).toBe(false);

    await grant(chartRules(), ['update', 'discordbots.shardwarden.io', true, 'finalizers']);
    await waitUntil(
      "the bot's owned objects",
      async () => ownedObjects('owned').every(([kind, name]) => exists(kind!, name!)),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await waitForCondition(h.kc, NS, 'owned', 'Degraded', 'False');
  }, 120_000);

  test('KEDA mode without KEDA RBAC: the gateway and the workers come up, WorkersScaled says what is forbidden, and clears once granted', async () => {
    await grant(chartRules(['rbac.keda=false']), ['patch', 'scaledobjects.keda.sh', false]);
    applyYaml(h.cp, botWithSecrets('scaled', { autoscaler: 'KEDA', minReplicas: 1, maxReplicas: 3 }));
    const forbidden = await waitForCondition(
      h.kc,
      NS,
      'scaled',
      'WorkersScaled',
      'False',
      'AutoscalerForbidden',
    );
    const message = forbidden.status?.conditions?.find((c) => c.type === 'WorkersScaled')?.message ?? '';
    expect(message).toContain(`Secret ${NS}/scaled-keda-redis`);
    expect(message).toContain(`User "${OPERATOR_USER}" cannot patch resource "secrets"`);
    expect(message).toContain('rbac.keda: true');
    expect(message).not.toContain(REDIS_PASSWORD);
    await waitUntil(
      "the bot's owned objects",
      async () => ownedObjects('scaled').every(([kind, name]) => exists(kind!, name!)),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const event = await waitForEvent(
      h.cp,
      NS,
      'scaled',
      'AutoscalerForbidden',
      (e) => e.reason === 'AutoscalerForbidden',
    );
    expect(event.type).toBe('Warning');
    expect(event.message).not.toContain(REDIS_PASSWORD);

    await grant(chartRules(['rbac.keda=true']), ['patch', 'scaledobjects.keda.sh', true]);
    await waitForCondition(h.kc, NS, 'scaled', 'WorkersScaled', 'True', 'ScaledByKEDA', 60_000);
    expect(exists('scaledobject', 'scaled-worker')).toBe(true);
  }, 120_000);

  test('leaving KEDA without the permission to delete its objects: the rest of the spec applies, WorkersScaled says what is left, and it goes once granted', async () => {
    await grant(chartRules(['rbac.keda=false']), ['delete', 'scaledobjects.keda.sh', false]);
    const image = 'registry.example/sietch:1.5.0';
    patchBot(h.cp, NS, 'scaled', { image, worker: { autoscaler: 'None' } });
    const stuck = await waitForCondition(h.kc, NS, 'scaled', 'WorkersScaled', 'False', 'AutoscalerForbidden');
    expect(stuck.status?.conditions?.find((c) => c.type === 'WorkersScaled')?.message).toContain(
      `may not delete ScaledObject ${NS}/scaled-worker left from KEDA`,
    );
    const gatewayImage = () =>
      h.cp.kubectl([
        'get',
        'statefulset',
        'scaled-gateway',
        '-n',
        NS,
        '-o',
        'jsonpath={.spec.template.spec.containers[0].image}',
      ]);
    await waitUntil('the new image on the gateway', async () => gatewayImage() === image, {
      timeoutMs: 60_000,
      intervalMs: 500,
    });

    await grant(chartRules(['rbac.keda=true']), ['delete', 'scaledobjects.keda.sh', true]);
    await waitUntil(
      'the KEDA objects removed and WorkersScaled gone',
      async () =>
        !exists('scaledobject', 'scaled-worker') &&
        !(await readBot(h.kc, NS, 'scaled')).status?.conditions?.some((c) => c.type === 'WorkersScaled'),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }, 120_000);
});
