// Everything the demo runs, started on free loopback ports in temporary folders: the control
// plane with kwok, Redis, Postgres, anvil with the test tokens, Prometheus, the Discord simulator,
// the chart's CRD and RBAC, the operator as a local process, the demo bot, and the pod runner that
// runs the bot's pods (Prometheus scrapes the operator and every pod). Each is registered in the run's scope as it starts, so however the demo
// ends (or is interrupted while starting), all of it stops in reverse order.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { DiscordSimulator } from '../discord-simulator/index.js';
import {
  deployTestTokens,
  freePort,
  kubeBinary,
  makeTempDir,
  startAnvil,
  startControlPlane,
  startPodRunner,
  startPostgres,
  createAppDatabase,
  startProcess,
  startPrometheus,
  startRedis,
  waitUntil,
  type AnvilNode,
  type ControlPlane,
  type ManagedProcess,
  type PodRunner,
  type PostgresServer,
  type PrometheusServer,
  type RedisServer,
  type RunScope,
} from '../testenv/index.js';
import { execFileSync } from 'node:child_process';
import { DEMO_BOT, DEMO_NAMESPACE, demoBotManifest } from './manifest.js';
import type { DemoOptions } from './options.js';
import { followScrapeTargets, scrapeTargets } from './scrape-targets.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRYPOINT = join(ROOT, 'dist', 'bin', 'shardwarden.js');
const LEDGER_MODULE = join(ROOT, 'dist', 'demo', 'event-ledger.js');
export const RELEASE = 'shardwarden';
export const RELEASE_NAMESPACE = 'shardwarden-system';
/** Where Multicall3 lives on every public chain; the worker's chain reader expects it there. */
const MULTICALL3 = '0xcA11bde05977b3631167028862bE2a173976CA11';
/** Short enough to see the autoscaler and the reshard step by step in a minutes-long scenario. */
export const PROMETHEUS_SCRAPE_SECONDS = 2;

export interface DemoStack {
  cp: ControlPlane;
  redis: RedisServer;
  postgres: PostgresServer;
  anvil: AnvilNode;
  prometheus: PrometheusServer;
  sim: DiscordSimulator;
  operator: ManagedProcess;
  operatorPort: number;
  runner: PodRunner;
  /** Logs of the operator and of every pod. */
  logDir: string;
  manifestPath: string;
}

type Say = (line: string) => void;

async function rpc(url: string, method: string, params: unknown[]): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = (await res.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`anvil ${method}: ${body.error.message}`);
  return body.result;
}

/** The chart's objects except the operator Deployment (and its PDB): its process runs here. */
function chartObjectsWithoutDeployment(): string {
  const text = execFileSync(
    kubeBinary('helm'),
    [
      'template',
      RELEASE,
      join(ROOT, 'charts', 'shardwarden'),
      '--namespace',
      RELEASE_NAMESPACE,
      '--include-crds',
    ],
    { encoding: 'utf8', cwd: ROOT },
  );
  const items = parseAllDocuments(text)
    .map((d) => d.toJS() as { kind?: string } | null)
    .filter(
      (d): d is { kind: string } => !!d?.kind && !['Deployment', 'PodDisruptionBudget'].includes(d.kind),
    );
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}

export async function startDemoStack(
  options: DemoOptions,
  say: Say,
  runId: string,
  scope: RunScope,
): Promise<DemoStack> {
  const logs = scope.own(makeTempDir('demo'), (l) => l.remove());
  say(
    'starting etcd, kube-apiserver, controller-manager, scheduler, kwok (2 fake nodes), Redis, Postgres, anvil, Prometheus',
  );
  // allSettled: when one fails, the others still finish starting and are stopped with it.
  const started = await Promise.allSettled([
    startControlPlane({ kwokNodes: 2, podReadiness: 'external' }).then((x) => scope.own(x, (c) => c.stop())),
    startRedis().then((x) => scope.own(x, (r) => r.close())),
    startPostgres().then((x) => scope.own(x, (p) => p.close())),
    startAnvil().then((x) => scope.own(x, (a) => a.stop())),
    startPrometheus({ scrapeIntervalSeconds: PROMETHEUS_SCRAPE_SECONDS }).then((x) =>
      scope.own(x, (p) => p.close()),
    ),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  const [cp, redis, postgres, anvil, prometheus] = started.map(
    (r) => (r as PromiseFulfilledResult<unknown>).value,
  ) as [
    Awaited<ReturnType<typeof startControlPlane>>,
    Awaited<ReturnType<typeof startRedis>>,
    Awaited<ReturnType<typeof startPostgres>>,
    Awaited<ReturnType<typeof startAnvil>>,
    PrometheusServer,
  ];
  const tokens = await deployTestTokens(anvil);
  await rpc(anvil.url, 'anvil_setCode', [
    MULTICALL3,
    await rpc(anvil.url, 'eth_getCode', [tokens.multicall3, 'latest']),
  ]);
  say(`  control plane ${cp.url}, kubeconfig ${cp.kubeconfigPath}`);
  say(
    `  redis ${redis.url}, postgres 127.0.0.1:${postgres.port}, anvil ${anvil.url} (ERC-20 ${tokens.erc20})`,
  );

  const sim = await DiscordSimulator.start({
    seed: 7,
    guilds: options.guilds,
    guildsPerRecommendedShard: 1000,
    gateway: { maxConcurrency: 2 },
  });
  scope.own(sim, (x) => x.stop());
  say(
    `  Discord simulator ${sim.apiUrl}: ${options.guilds} guilds, recommends ${sim.recommendedShards()} shard(s), max_concurrency 2`,
  );

  say(`installing the chart's CRD and RBAC (helm template, without the operator Deployment)`);
  cp.kubectl(['create', 'namespace', RELEASE_NAMESPACE]);
  cp.kubectl(['apply', '--server-side', '-f', '-'], chartObjectsWithoutDeployment());
  await cp.waitForCrds('crd/discordbots.shardwarden.io');
  // The operator holds only its ServiceAccount's token, so the chart's RBAC is what it gets.
  const token = cp.kubectl(['create', 'token', RELEASE, '-n', RELEASE_NAMESPACE, '--duration=24h']).trim();
  const saKubeconfig = join(logs.path, 'operator.kubeconfig');
  writeFileSync(
    saKubeconfig,
    cp.kubectl(['config', 'view', '--raw', '--minify']).replace(/^(\s+token:) \S+$/m, `$1 ${token}`),
    { mode: 0o600 },
  );

  const operatorPort = await freePort();
  const operator = startProcess(
    'operator',
    process.execPath,
    [
      ENTRYPOINT,
      'operator',
      '--leader-elect=false',
      `--discord-api-url=${sim.apiUrl}`,
      '--http-host=127.0.0.1',
      `--http-port=${operatorPort}`,
      '--autoscale-interval=1s',
      `--watch-namespaces=${DEMO_NAMESPACE}`,
    ],
    join(logs.path, 'operator.log'),
    { env: { ...process.env, KUBECONFIG: saKubeconfig } },
  );
  scope.own(operator, (x) => x.stop());
  await waitUntil(
    'the operator /readyz',
    async () => (await fetch(`http://127.0.0.1:${operatorPort}/readyz`)).ok,
    { process: operator, timeoutMs: 30_000, intervalMs: 200 },
  );
  say(
    `operator running as a local process (ServiceAccount ${RELEASE_NAMESPACE}/${RELEASE}), metrics http://127.0.0.1:${operatorPort}/metrics`,
  );

  const runner = await startPodRunner({
    kubeConfig: cp.kubeConfig(),
    namespace: DEMO_NAMESPACE,
    labelSelector: `app.kubernetes.io/instance=${DEMO_BOT}`,
    entrypoint: ENTRYPOINT,
    logDir: logs.path,
    readinessPeriodMs: 1_000,
    logLevel: 'silent',
    // The ENV of a bot image built on Shardwarden's with the demo handlers (docs/workers.md).
    env: {
      SHARDWARDEN_HANDLER_MODULES: `shardwarden:token-gating,${LEDGER_MODULE}`,
      SHARDWARDEN_DEMO_EVENT_DELAY_MS: String(options.eventDelayMs),
      SHARDWARDEN_DEMO_RUN: runId,
    },
  });
  scope.own(runner, (x) => x.stop());
  const stopFollowing = followScrapeTargets(
    () =>
      scrapeTargets(
        { port: operatorPort, namespace: RELEASE_NAMESPACE, pod: `${RELEASE}-operator` },
        { namespace: DEMO_NAMESPACE, name: DEMO_BOT },
        runner.pods(),
      ),
    (targets) => prometheus.setTargets(targets),
  );
  scope.defer(async () => stopFollowing());
  say(
    `Prometheus ${prometheus.url} scrapes the operator and every pod every ${PROMETHEUS_SCRAPE_SECONDS} s, labelled as the chart's ServiceMonitor and PodMonitor would`,
  );

  const manifestPath = join(logs.path, 'demo-bot.yaml');
  writeFileSync(
    manifestPath,
    demoBotManifest({
      token: sim.token,
      redisUrl: redis.url,
      // An ordinary role owning its database, as in production: the worker refuses a superuser.
      databaseUrl: await createAppDatabase(postgres),
      rpcUrl: anvil.url,
      guildsPerShard: options.guildsPerShard,
      scaleDownSeconds: options.scaleDownSeconds,
    }),
    { mode: 0o600 },
  );
  cp.kubectl(['create', 'namespace', DEMO_NAMESPACE]);
  cp.kubectl(['apply', '-f', manifestPath]);
  say(`kubectl apply -f ${manifestPath}  (DiscordBot ${DEMO_NAMESPACE}/${DEMO_BOT})`);

  return {
    cp,
    redis,
    postgres,
    anvil,
    prometheus,
    sim,
    operator,
    operatorPort,
    runner,
    logDir: logs.path,
    manifestPath,
  };
}
