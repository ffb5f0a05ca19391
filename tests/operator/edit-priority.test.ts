// An edit is not queued behind the bots whose timers are due. With one reconcile at a time and
// the other bots' Builtin autoscalers due again at once (a 1 ms interval; each pass reads the
// backlog from a real Redis), keys wait in the queue; the edited bot (no autoscaler, so no
// timer) must start ahead of them, where first-in-first-out puts it last.
import { AppsV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { parseConfig } from '../../operator/config/config.js';
import { DiscordBotController } from '../../operator/controller/discordbot-controller.js';
import { OperatorMetrics } from '../../operator/metrics/operator-metrics.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { kubeBinary, startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';
import { applyYaml, exampleBot, secret, startHarness, type Harness } from './harness.js';

const NS = 'prio';
const BOTS = Array.from({ length: 48 }, (_, i) => `bot-${String(i).padStart(2, '0')}`);
const [EDITED, ...OTHERS] = BOTS as [string, ...string[]];

interface Line {
  msg: string;
  key?: string;
  priority?: string;
  depth?: number;
}

describe('work queue priority in the operator (real apiserver, Discord simulator)', () => {
  let h: Harness;
  let controller: DiscordBotController;
  let apps: AppsV1Api;
  let redis: RedisServer;
  /** The operator's debug log: which keys were queued and in what order reconciles started. */
  const lines: Line[] = [];

  beforeAll(async () => {
    [h, redis] = await Promise.all([
      startHarness({ controllers: false, simulator: { seed: 3, tokens: ['token-one'] } }),
      startRedis(),
    ]);
    h.cp.kubectl(['create', 'namespace', NS]);
    apps = h.kc.makeApiClient(AppsV1Api);
    applyYaml(h.cp, [
      secret(NS, 'shared-discord', { token: 'token-one' }),
      secret(NS, 'shared-redis', { url: redis.url }),
    ]);
    const config = parseConfig(
      [
        `--discord-api-url=${h.sim.apiUrl}`,
        '--leader-elect=false',
        '--max-concurrent-reconciles=1',
        '--autoscale-interval=1ms',
      ],
      {},
    );
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    controller = new DiscordBotController(h.kc, config, new OperatorMetrics(), log);
    await controller.start();
  }, 180_000);
  afterAll(async () => {
    await controller?.stop();
    await h?.stop();
    await redis?.close();
  });

  const image = async (name: string) =>
    (await apps.readNamespacedStatefulSet({ name: `${name}-gateway`, namespace: NS })).spec?.template.spec
      ?.containers[0]?.image;

  const bot = (name: string, worker?: Record<string, unknown>) =>
    exampleBot(NS, name, {
      tokenSecretRef: { name: 'shared-discord' },
      redis: { urlSecretRef: { name: 'shared-redis' } },
      ...(worker ? { worker } : {}),
    });

  test("an edit's reconcile starts ahead of the timer keys queued before it", async () => {
    applyYaml(h.cp, [bot(EDITED, { autoscaler: 'None' })]);
    await waitUntil('the edited bot has its Deployment', async () => {
      const list = await apps.listNamespacedDeployment({ namespace: NS });
      return list.items.some((d) => d.metadata?.name === `${EDITED}-worker`);
    });
    applyYaml(
      h.cp,
      OTHERS.map((name) => bot(name)),
    );
    await waitUntil(
      "the other bots' timers firing",
      async () =>
        OTHERS.every(
          (name) =>
            lines.filter((l) => l.msg === 'reconcile starting' && l.key === `${NS}/${name}`).length >= 3,
        ),
      { timeoutMs: 120_000 },
    );
    const from = lines.length;
    // Not harness.patchBot: its kubectl blocks this process (the operator's) until it returns.
    const patch = JSON.stringify({ spec: { image: 'registry.example/sietch:2.0.0' } });
    const kubectl = ['--kubeconfig', h.cp.kubeconfigPath];
    await promisify(execFile)(kubeBinary('kubectl'), [
      ...kubectl,
      ...['patch', 'dbot', EDITED, '-n', NS, '--type=merge', '-p', patch],
    ]);
    await waitUntil(
      'the edited image',
      async () => (await image(EDITED)) === 'registry.example/sietch:2.0.0',
      {
        timeoutMs: 60_000,
      },
    );

    const after = lines.slice(from);
    const queuedAt = after.findIndex(
      (l) => l.msg === 'queued' && l.key === `${NS}/${EDITED}` && l.priority === 'event',
    );
    expect(queuedAt).toBeGreaterThanOrEqual(0);
    const waiting = after[queuedAt]!.depth!;
    const startsBefore = after
      .slice(queuedAt + 1)
      .filter((l) => l.msg === 'reconcile starting')
      .findIndex((l) => l.key === `${NS}/${EDITED}`);
    // Other bots were waiting when the edit came (in first-in-first-out order it would start
    // after all of them)...
    expect(waiting).toBeGreaterThan(1);
    // ...but it started ahead of them (behind at most the other bots' own watch events).
    expect(startsBefore).toBeGreaterThanOrEqual(0);
    expect(startsBefore).toBeLessThan(waiting);
  });
});
