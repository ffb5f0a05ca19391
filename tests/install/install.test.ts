// helm install into a real control plane (controller-manager, scheduler, kwok nodes), the
// operator running as a local process authenticated as the chart's ServiceAccount (so the
// chart's RBAC is what it gets), the Discord simulator as Discord, and the examples applied with
// kubectl apply: their gateway pods must exist and be Ready on kwok nodes.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { specSchema, type Schema } from '../../operator/api/v1alpha1/schema.js';
import {
  kubeBinary,
  startControlPlane,
  waitUntil,
  type ControlPlane,
  type ManagedProcess,
} from '../../testenv/index.js';
import { loggedPort, startShardwarden } from '../support/built-entrypoint.js';
import { installThirdPartyCrds } from './fixtures.js';
import { RELEASE_NAMESPACE, installChart, parseDocs } from './helm.js';

const EXAMPLES = 'manifests/examples';
const BOTS_NS = 'bots';
const RELEASE = 'sw';
const FULLNAME = 'sw-shardwarden';

interface PodList {
  items: {
    metadata: { name: string };
    spec: { nodeName?: string };
    status: { conditions?: { type: string; status: string }[] };
  }[];
}

/** The bot tokens the examples' Secrets hold (placeholders; the simulator accepts them). */
function exampleTokens(): string[] {
  return readdirSync(EXAMPLES).flatMap((f) =>
    parseDocs(readFileSync(join(EXAMPLES, f), 'utf8'))
      .filter((d) => d.kind === 'Secret' && (d.stringData as Record<string, string>).token)
      .map((d) => (d.stringData as Record<string, string>).token!),
  );
}

describe('helm install, then a DiscordBot from the examples', () => {
  let cp: ControlPlane;
  let sim: DiscordSimulator;
  let operator: ManagedProcess | undefined;
  let saKubeconfig: string;

  beforeAll(async () => {
    cp = await startControlPlane({ kwokNodes: 2 });
    await installThirdPartyCrds(cp);
    sim = await DiscordSimulator.start({ guilds: 10, tokens: exampleTokens() });
  }, 180_000);
  afterAll(async () => {
    await operator?.stop();
    await sim?.stop();
    await cp?.stop();
  });

  test('helm install brings up the chart: CRD, RBAC, the operator Deployment Ready on kwok nodes, monitoring', () => {
    const out = installChart(
      cp.kubeconfigPath,
      RELEASE,
      [
        'metrics.serviceMonitor.enabled=true',
        'metrics.podMonitor.enabled=true',
        'prometheusRule.enabled=true',
        'dashboards.enabled=true',
        // The KEDA example below needs the chart to grant writing its objects.
        'rbac.keda=true',
      ],
      ['--wait', '--timeout', '120s'],
    );
    expect(out).toContain('STATUS: deployed');
    expect(out).toContain('kubectl get dbot -w'); // NOTES.txt
    cp.kubectl(['get', 'crd', 'discordbots.shardwarden.io']);
    const deploy = JSON.parse(
      cp.kubectl(['get', 'deployment', FULLNAME, '-n', RELEASE_NAMESPACE, '-o', 'json']),
    ) as { status: { availableReplicas?: number } };
    expect(deploy.status.availableReplicas).toBe(2);
    for (const kind of ['servicemonitor', 'podmonitor', 'prometheusrule', 'poddisruptionbudget', 'service'])
      expect(cp.kubectl(['get', kind, '-n', RELEASE_NAMESPACE, '-o', 'name'])).toContain(FULLNAME);
    expect(
      cp
        .kubectl(['get', 'configmap', '-n', RELEASE_NAMESPACE, '-l', 'grafana_dashboard=1', '-o', 'name'])
        .trim()
        .split('\n'),
    ).toHaveLength(3);
  }, 150_000);

  test('the operator, holding only the chart ServiceAccount token, reconciles the examples: gateway pods Ready on kwok nodes', async () => {
    // A token for the chart's ServiceAccount (TokenRequest API) in a copy of the admin kubeconfig.
    const token = cp.kubectl(['create', 'token', FULLNAME, '-n', RELEASE_NAMESPACE, '--duration=1h']).trim();
    const admin = readFileSync(cp.kubeconfigPath, 'utf8');
    expect(admin).toMatch(/^ {4}token: \S+$/m);
    saKubeconfig = join(cp.dir, 'operator-sa.kubeconfig');
    writeFileSync(saKubeconfig, admin.replace(/^ {4}token: \S+$/m, `    token: ${token}`), { mode: 0o600 });
    // Least privilege: what the operator needs, and not more.
    const canI = (verb: string, resource: string) => {
      const r = spawnSync(
        kubeBinary('kubectl'),
        ['--kubeconfig', saKubeconfig, 'auth', 'can-i', verb, resource, '-n', BOTS_NS],
        { encoding: 'utf8' },
      );
      return `${verb} ${resource}: ${r.stdout.trim()}`;
    };
    expect(
      [
        ['watch', 'discordbots.shardwarden.io'],
        ['patch', 'statefulsets.apps'],
        ['delete', 'discordbots.shardwarden.io'],
        ['create', 'pods'],
        ['update', 'discordbots.shardwarden.io'],
      ].map(([verb, resource]) => canI(verb!, resource!)),
    ).toEqual([
      'watch discordbots.shardwarden.io: yes',
      'patch statefulsets.apps: yes',
      'delete discordbots.shardwarden.io: no',
      'create pods: no',
      'update discordbots.shardwarden.io: no',
    ]);

    operator = startShardwarden(
      'operator',
      [
        'operator',
        '--identity=local-operator',
        `--lease-name=${FULLNAME}`,
        `--lease-namespace=${RELEASE_NAMESPACE}`,
        '--http-host=127.0.0.1',
        '--http-port=0',
        `--discord-api-url=${sim.apiUrl}`,
      ],
      { KUBECONFIG: saKubeconfig },
      join(cp.dir, 'operator.log'),
    );
    const port = await loggedPort(operator);

    cp.kubectl(['create', 'namespace', BOTS_NS]);
    for (const file of readdirSync(EXAMPLES))
      cp.kubectl(['apply', '-n', BOTS_NS, '-f', join(EXAMPLES, file)]);

    const expected: Record<string, number> = { 'small-bot': 1, 'large-bot': 6, 'keda-bot': 1 };
    for (const [bot, pods] of Object.entries(expected)) {
      let ready: PodList['items'] = [];
      await waitUntil(
        `${pods} Ready gateway pod(s) of ${bot}`,
        async () => {
          const list = JSON.parse(
            cp.kubectl([
              'get',
              'pods',
              '-n',
              BOTS_NS,
              '-l',
              `app.kubernetes.io/instance=${bot},app.kubernetes.io/component=gateway`,
              '-o',
              'json',
            ]),
          ) as PodList;
          ready = list.items.filter((p) =>
            p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
          );
          if (ready.length === pods && list.items.length === pods) return true;
          // Said when the wait times out.
          throw new Error(
            `${list.items.length} pod(s), ${ready.length} Ready; ${cp.kubectl(['get', 'dbot,statefulset,pods', '-n', BOTS_NS, '-o', 'wide'])}`,
          );
        },
        { process: operator, timeoutMs: 90_000, intervalMs: 1_000 },
      );
      for (const p of ready) expect(p.spec.nodeName).toMatch(/^kwok-node-\d$/);
    }

    // KEDA mode: the operator renders the ScaledObject (the chart grants keda.sh objects).
    await waitUntil(
      'the ScaledObject of keda-bot',
      async () =>
        cp.kubectl(['get', 'scaledobjects', '-n', BOTS_NS, '-o', 'name']).includes('keda-bot-worker'),
      { process: operator, timeoutMs: 30_000, intervalMs: 1_000 },
    );

    // Leadership through the chart's leader-election Role, and no RBAC refusals on the way.
    expect(
      cp.kubectl([
        'get',
        'lease',
        FULLNAME,
        '-n',
        RELEASE_NAMESPACE,
        '-o',
        'jsonpath={.spec.holderIdentity}',
      ]),
    ).toBe('local-operator');
    const log = readFileSync(operator.logFile, 'utf8');
    expect(log).not.toMatch(/forbidden/i);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^shardwarden_bot_shards\{namespace="bots",bot="large-bot"\} 96$/m);
  }, 180_000);

  test('kubectl get dbot shows the printer columns', async () => {
    let out = '';
    await waitUntil(
      'large-bot status to show 6 Ready pods',
      async () => {
        out = cp.kubectl(['get', 'dbot', '-n', BOTS_NS]);
        return /^large-bot\s+96\s+6\s+6\s/m.test(out);
      },
      { process: operator, timeoutMs: 60_000, intervalMs: 1_000 },
    );
    expect(out.split('\n')[0]!.split(/\s+/)).toEqual([
      'NAME',
      'SHARDS',
      'PODS',
      'READY',
      'WORKERS',
      'BACKLOG',
      'AGE',
    ]);
    expect(out).toMatch(/^small-bot\s+1\s+1\s+1\s/m);
  });

  test('kubectl explain describes every field of discordbot.spec', async () => {
    // The apiserver publishes a new CRD's OpenAPI a moment after it is Established.
    await waitUntil('kubectl explain discordbot', async () => {
      try {
        return cp.kubectl(['explain', 'discordbot.spec']).includes('FIELDS:');
      } catch {
        return false;
      }
    });
    const problems: string[] = [];
    const normalize = (s: string) => s.replace(/\s+/g, ' ').trim();
    const visit = (path: string, node: Schema) => {
      const out = cp.kubectl(['explain', `discordbot.${path}`]);
      const description = /DESCRIPTION:\n([\s\S]*?)\n\n?(?:FIELDS:|$)/.exec(out)?.[1] ?? '';
      if (normalize(description) !== normalize(node.description ?? ''))
        problems.push(`${path}: description ${JSON.stringify(normalize(description))}`);
      const fields = new Map(
        [
          ...out.matchAll(/^ {2}(\S+)\t<[^>]+>(?: -required-)?\n(?: {2}enum: .*\n)?((?: {4}.*\n?|\n)*)/gm),
        ].map((m) => [m[1]!, normalize(m[2]!)]),
      );
      for (const [name, child] of Object.entries(node.properties ?? {})) {
        const explained = fields.get(name);
        if (!explained) problems.push(`${path}.${name}: not listed`);
        else if (!explained.startsWith(normalize(child.description ?? '')) || !explained)
          problems.push(`${path}.${name}: ${JSON.stringify(explained)}`);
        if (child.properties) visit(`${path}.${name}`, child);
      }
    };
    visit('spec', specSchema);
    expect(problems).toEqual([]);
  });
});
