// Everything the demo runs, started on free ports in temporary folders: the control plane, Redis,
// Postgres, anvil with the test tokens, Prometheus, the Discord simulator, the chart's CRD and
// RBAC, the operator as a local process, the demo bot, and what runs the bot's pods: a real node
// (kubelet, containerd) with the demo bot image, or kwok and the pod runner (Prometheus scrapes
// the operator and every pod). Each is registered in the run's scope as it starts, so however
// the demo ends (or is interrupted while starting), all of it stops in reverse order.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { DiscordSimulator } from '../discord-simulator/index.js';
import {
  buildImageOnProject,
  buildProjectImage,
  deployTestTokens,
  freePort,
  kubeBinary,
  makeTempDir,
  startAnvil,
  startControlPlane,
  projectImageUnavailable,
  realNodeUnavailable,
  startPodRunner,
  startPostgres,
  startRealNode,
  createAppDatabase,
  startProcess,
  startPrometheus,
  startRedis,
  waitUntil,
  type AnvilNode,
  type ControlPlane,
  type BuiltImage,
  type ManagedProcess,
  type ProjectImage,
  type PostgresServer,
  type PrometheusServer,
  type RedisServer,
  type RealNode,
  type RunScope,
  interruptedChild,
  startOrFallBack,
} from '../testenv/index.js';
import { execFileSync } from 'node:child_process';
import { DEMO_BOT, DEMO_NAMESPACE, demoBotManifest } from './manifest.js';
import { chooseNode, kwokFallbackWarning, type DemoOptions } from './options.js';
import { followNodePods, runnerPods, type DemoPod } from './pods.js';
import { followScrapeTargets, scrapeTargets } from './scrape-targets.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRYPOINT = join(ROOT, 'dist', 'bin', 'shardwarden.js');
const LEDGER_MODULE = join(ROOT, 'dist', 'demo', 'event-ledger.js');
/** Where the demo bot image has the ledger module: beside the image's own dist/ (its imports). */
const LEDGER_IN_IMAGE = '/app/dist/demo/event-ledger.js';
const DEMO_IMAGE_REPOSITORY = 'shardwarden.local/shardwarden-demo';
/** The image the manifest names when the pod runner runs the pods: never pulled. */
const UNPULLED_IMAGE = 'ghcr.io/shardwarden/shardwarden:0.1.0';
/** How long pods may take to start: containers on a loaded machine take longer than processes. */
const PODS_START_MS = { kwok: 120_000, real: 600_000 } as const;
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
  /** Where the bot's pods run. */
  node: 'real' | 'kwok';
  /** Why the pods run on kwok although the real node was the default, to repeat at the end. */
  nodeWarning?: string;
  /** The bot's pods, as narrated and scraped. */
  pods(): DemoPod[];
  /** How long to wait for a round of pods to start. */
  podsStartMs: number;
  /** Logs of the operator and, on kwok, of every pod. */
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

/**
 * The demo bot's image, as its author would build it: FROM the project image (built from the
 * Dockerfile), plus the compiled ledger module and the ENV that loads it (docs/workers.md).
 */
function buildDemoBotImage(options: DemoOptions): BuiltImage & { project: ProjectImage } {
  const project = buildProjectImage({ quiet: true });
  return {
    project,
    ...buildImageOnProject(project, {
      repository: DEMO_IMAGE_REPOSITORY,
      files: { [LEDGER_MODULE]: LEDGER_IN_IMAGE },
      env: {
        SHARDWARDEN_HANDLER_MODULES: `shardwarden:token-gating,${LEDGER_IN_IMAGE}`,
        SHARDWARDEN_DEMO_EVENT_DELAY_MS: String(options.eventDelayMs),
      },
    }),
  };
}

/** `url` with its host replaced: the address pods reach a host service at. */
function atHost(url: string, host: string): string {
  const u = new URL(url);
  u.hostname = host;
  return u.toString();
}

/** Waits for all of `starts`; when one fails, the others still finish and are owned, then it throws. */
async function startAll<T extends unknown[]>(starts: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const started = await Promise.allSettled(starts);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return started.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
}

/** What the rest of the demo builds on, on either node. */
interface Base {
  cp: ControlPlane;
  redis: RedisServer;
  postgres: PostgresServer;
  anvil: AnvilNode;
  prometheus: PrometheusServer;
  /** On the real node: its name, where pods reach the host's services, and the bot's image. */
  real?: { node: RealNode; serviceHost: string; image: BuiltImage };
}

function startPrometheus2s(scope: RunScope): Promise<PrometheusServer> {
  return startPrometheus({ scrapeIntervalSeconds: PROMETHEUS_SCRAPE_SECONDS }).then((x) =>
    scope.own(x, (p) => p.close()),
  );
}

async function startKwokBase(say: Say, scope: RunScope): Promise<Base> {
  say(
    'starting etcd, kube-apiserver, controller-manager, scheduler, kwok (2 fake nodes), Redis, Postgres, anvil, Prometheus',
  );
  const [cp, redis, postgres, anvil, prometheus] = await startAll<
    [ControlPlane, RedisServer, PostgresServer, AnvilNode, PrometheusServer]
  >([
    startControlPlane({ kwokNodes: 2, podReadiness: 'external' }).then((x) => scope.own(x, (c) => c.stop())),
    startRedis().then((x) => scope.own(x, (r) => r.close())),
    startPostgres().then((x) => scope.own(x, (p) => p.close())),
    startAnvil().then((x) => scope.own(x, (a) => a.stop())),
    startPrometheus2s(scope),
  ]);
  return { cp, redis, postgres, anvil, prometheus };
}

/**
 * The control plane, the real node, then Redis, Postgres and anvil on loopback and on the node's
 * bridge address (its pods' gateway), never on the machine's LAN address: Redis with a random
 * password, Postgres letting only the app role in from the pod subnet, with its password.
 */
async function startRealBase(options: DemoOptions, say: Say, scope: RunScope): Promise<Base> {
  say(
    'building the demo bot image FROM the project image (Dockerfile), offline; cached by their inputs (a first build takes minutes: the Node base, npm ci, tsc)',
  );
  const image = buildDemoBotImage(options);
  say(
    `  ${image.project.image} (${Math.round(image.project.sizeBytes / 1e6)} MB, ${image.project.buildSeconds} s) → ${image.image}`,
  );
  say('starting etcd, kube-apiserver, controller-manager, scheduler, Prometheus');
  const [cp, prometheus] = await startAll<[ControlPlane, PrometheusServer]>([
    // No podAccess: the bot's pods never call the apiserver (only the operator, a local process),
    // so it stays on loopback.
    startControlPlane({ controllers: true, scheduler: true }).then((x) => scope.own(x, (c) => c.stop())),
    startPrometheus2s(scope),
  ]);
  say(
    'starting the real node: containerd, kubelet, kube-proxy, the CNI bridge (waits for the machine-wide real-node lock, up to 20 min, while another run holds it)',
  );
  // The run's scope stops the node on Ctrl-C, in order with everything else.
  const node = scope.own(await startRealNode(cp, { clusterDns: false, handleSignals: false }), (n) =>
    n.stop(),
  );
  node.importImage(image.archive);
  say(`  node ${node.name} Ready at ${node.nodeIp}, pod network ${node.podSubnet}; ${image.image} imported`);
  const serviceHost = node.gatewayIp;
  say(
    `starting Redis, Postgres, anvil (also on ${serviceHost}, the pods' gateway on the node's bridge: Redis with a password, Postgres for the app role from ${node.podSubnet} only)`,
  );
  const [redis, postgres, anvil] = await startAll<[RedisServer, PostgresServer, AnvilNode]>([
    startRedis({ host: serviceHost }).then((x) => scope.own(x, (r) => r.close())),
    startPostgres({ remote: { host: serviceHost, clients: node.podSubnet } }).then((x) =>
      scope.own(x, (p) => p.close()),
    ),
    startAnvil({ host: serviceHost }).then((x) => scope.own(x, (a) => a.stop())),
  ]);
  return { cp, redis, postgres, anvil, prometheus, real: { node, serviceHost, image } };
}

export async function startDemoStack(
  options: DemoOptions,
  say: Say,
  runId: string,
  scope: RunScope,
): Promise<DemoStack> {
  // --node kwok needs no probe (which loads br_netfilter as root).
  const unavailable =
    options.node === 'kwok' ? undefined : (realNodeUnavailable() ?? projectImageUnavailable());
  const chosen = chooseNode(options.node, unavailable);
  const warn = (warning: string) => {
    for (const line of ['', warning, '']) say(line);
  };
  if (chosen.warning) warn(chosen.warning);
  // Asked for by name: refused before anything starts, with the reason.
  if (chosen.node === 'real' && unavailable)
    throw new Error(`--node real: ${unavailable} (--node kwok runs without it)`);
  let nodeWarning = chosen.warning;
  const base =
    chosen.node === 'kwok'
      ? await startKwokBase(say, scope)
      : await startOrFallBack(
          scope,
          () => startRealBase(options, say, scope),
          // Only `auto` falls back, and never from an interrupt: the real node could not start here.
          (err) => options.node === 'auto' && !scope.signal.aborted && !interruptedChild(err),
          (err) => {
            nodeWarning = kwokFallbackWarning(`the real node did not start: ${err.message}`);
            warn(nodeWarning);
            return startKwokBase(say, scope);
          },
        );
  const { cp, redis, postgres, anvil, prometheus } = base;
  const real = base.real !== undefined;
  const node = real ? 'real' : 'kwok';
  const serviceHost = base.real?.serviceHost;
  const logs = scope.own(makeTempDir('demo'), (l) => l.remove());
  const tokens = await deployTestTokens(anvil);
  await rpc(anvil.url, 'anvil_setCode', [
    MULTICALL3,
    await rpc(anvil.url, 'eth_getCode', [tokens.multicall3, 'latest']),
  ]);
  say(`  control plane ${cp.url}, kubeconfig ${cp.kubeconfigPath}`);
  // The URL itself may carry Redis' password: only the port is said.
  say(
    `  redis 127.0.0.1:${redis.port}, postgres 127.0.0.1:${postgres.port}, anvil ${anvil.url} (ERC-20 ${tokens.erc20})`,
  );

  const sim = await DiscordSimulator.start({
    // On the node's bridge address for real pods, as a Discord API proxy would be.
    ...(serviceHost && { host: serviceHost }),
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

  const selector = `app.kubernetes.io/instance=${DEMO_BOT}`;
  const pods = real
    ? await followNodePods(cp.kubeconfigPath, DEMO_NAMESPACE, selector)
    : runnerPods(
        await startPodRunner({
          kubeConfig: cp.kubeConfig(),
          namespace: DEMO_NAMESPACE,
          labelSelector: selector,
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
        }),
      );
  scope.own(pods, (x) => x.stop());
  const stopFollowing = followScrapeTargets(
    () =>
      scrapeTargets(
        { port: operatorPort, namespace: RELEASE_NAMESPACE, pod: `${RELEASE}-operator` },
        { namespace: DEMO_NAMESPACE, name: DEMO_BOT },
        pods.pods(),
      ),
    (targets) => prometheus.setTargets(targets),
  );
  scope.defer(async () => stopFollowing());
  say(
    `Prometheus ${prometheus.url} scrapes the operator and every pod${real ? ' (at its pod IP)' : ''} every ${PROMETHEUS_SCRAPE_SECONDS} s, labelled as the chart's ServiceMonitor and PodMonitor would`,
  );

  const manifestPath = join(logs.path, 'demo-bot.yaml');
  // An ordinary role owning its database, as in production: the worker refuses a superuser.
  const databaseUrl = await createAppDatabase(postgres);
  writeFileSync(
    manifestPath,
    demoBotManifest({
      token: sim.token,
      redisUrl: serviceHost ? atHost(redis.url, serviceHost) : redis.url,
      databaseUrl: serviceHost ? atHost(databaseUrl, serviceHost) : databaseUrl,
      rpcUrl: anvil.url,
      guildsPerShard: options.guildsPerShard,
      scaleDownSeconds: options.scaleDownSeconds,
      image: base.real?.image.image ?? UNPULLED_IMAGE,
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
    node,
    nodeWarning,
    pods: () => pods.pods(),
    podsStartMs: PODS_START_MS[node],
    logDir: logs.path,
    manifestPath,
  };
}
