// Benchmark: the operator process against a real control plane and the Discord simulator, in a
// cluster that also holds unrelated Secrets and ConfigMaps, as a shared cluster does, with the
// bots on one real Redis (the Builtin autoscaler reads their backlogs). In one run:
//   1. BENCH_FIRST_BOTS (200) DiscordBots at once: time to converge, RSS once settled;
//   2. the rest up to BENCH_BOTS (1,000) at once: time until all have converged;
//   3. the tail: until the operator has sent no request for BENCH_QUIET_SECONDS (30, at most
//      BENCH_QUIET_TIMEOUT_SECONDS, 900), as the controller-manager still fills in the workloads'
//      status; then apiserver requests per minute, per verb, once nothing changes
//      (BENCH_IDLE_SECONDS, 60);
//   4. BENCH_EDITS (50) spec edits, one bot at a time: edit → its StatefulSet changed, p50/p99;
//   5. the operator's RSS and heap at their peak and settled (sampled every 500 ms inside it).
// The JSON ends with `targets` (docs/benchmarks.md), computed from this run's figures.
//   BENCH_UNRELATED (2,000 Secrets and 2,000 ConfigMaps), BENCH_HEAP_SNAPSHOT=1 (a heap
//   snapshot of the settled operator, path in the output), BENCH_TRACE_GC=1 (--trace-gc into
//   the operator log), BENCH_HEAP_PEAK_SNAPSHOT_MB (one heap snapshot, of what is live, the first
//   time the used heap reaches that size), BENCH_HEAP_PROFILE=1 (V8's sampling heap profile of
//   everything allocated over the run, garbage included), BENCH_LOG_LEVEL (info; debug names the status fields each write changes).
//   SHARDWARDEN_KEEP_TMP=1 keeps the logs (operator.log, kube-controller-manager.log; the folder
//   is printed first). The operator starts as the chart's Deployment starts it (node flags,
//   MALLOC_ARENA_MAX), or with BENCH_OPERATOR_NODE_FLAGS and MALLOC_ARENA_MAX when set.
import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ENV } from '../bot/runtime-contract.js';
import type { DiscordBot } from '../operator/api/v1alpha1/types.js';
import {
  freePort,
  renderOperatorLaunch,
  runScope,
  startControlPlane,
  startRedis,
  waitUntil,
} from '../testenv/index.js';
import { cpuSeconds, processesMentioning, startProcess } from '../testenv/processes.js';
import { startSimulatorWithOptions } from './simulator-process.js';
import { atMost, printFigures } from './targets.js';

const setting = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const bots = setting('BENCH_BOTS', 1_000);
const firstBots = Math.min(bots, setting('BENCH_FIRST_BOTS', 200));
const unrelated = setting('BENCH_UNRELATED', 2_000);
const idleSeconds = setting('BENCH_IDLE_SECONDS', 60);
const edits = setting('BENCH_EDITS', 50);
const quietSeconds = setting('BENCH_QUIET_SECONDS', 30);
const quietTimeoutSeconds = setting('BENCH_QUIET_TIMEOUT_SECONDS', 900);
const NS = 'bench';
const MiB = 1024 * 1024;

/** Each phase's figures on stderr as it ends, so an interrupted run still tells what it saw. */
const progress = (figures: Record<string, unknown>) => console.error(JSON.stringify(figures));

// Whatever ends the run (its end, a failure, Ctrl-C), what it started stops.
const scope = runScope();
const cp = scope.own(await startControlPlane({ controllers: true }), (c) => c.stop());
// The simulator in its own process: kubectl calls below block this one, and the operator's
// Discord lookups must not wait for them (they timed out, and reconciles took 37 s each).
// Every bot its own token, as real bots have: Discord counts requests per token.
// BENCH_SHARED_TOKEN=1 gives all bots one token (the runs before session 9).
const sharedToken = process.env.BENCH_SHARED_TOKEN === '1';
const tokenOf = (i: number) => (sharedToken ? 'bench-token' : `bench-token-${i}`);
const sim = scope.own(
  await startSimulatorWithOptions({
    guilds: 1500,
    tokens: sharedToken ? [tokenOf(0)] : Array.from({ length: bots }, (_, i) => tokenOf(i)),
  }),
  (s) => s.child.kill('SIGTERM'),
).info;
// The bots' Redis (one for all, each bot its own key prefix): the Builtin autoscaler reads their
// backlogs from it every 10 s, as it would in a cluster.
const redis = scope.own(await startRedis(), (r) => r.close());
progress({ logs: cp.dir });
const kc = cp.kubeConfig();
const custom = kc.makeApiClient(CustomObjectsApi);
await cp.applyCrds('crds/shardwarden.io_discordbots.yaml');
for (const ns of [NS, 'unrelated']) cp.kubectl(['create', 'namespace', ns]);

/** Server-side apply of many objects in one kubectl call, as a GitOps tool would. */
const apply = (objects: unknown[]) =>
  cp.kubectl(['apply', '--server-side', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));

// What a shared cluster holds besides the bots: Secrets (certificates, tokens, Helm releases)
// of a few KB each, and ConfigMaps. None is the operator's business.
const filler = 'x'.repeat(3_000);
const unrelatedSecretsSeconds = await timed(() =>
  apply([
    ...Array.from({ length: unrelated }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `other-${i}`, namespace: i % 2 ? 'unrelated' : NS },
      stringData: { 'tls.crt': filler, 'tls.key': filler.slice(0, 1_000) },
    })),
    ...Array.from({ length: unrelated }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `other-${i}`, namespace: i % 2 ? 'unrelated' : NS },
      data: { 'config.yaml': filler },
    })),
  ]),
);
const secret = (name: string, stringData: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: NS },
  stringData,
});
apply([secret('bench-redis', { url: redis.url }), secret('bench-discord', { token: tokenOf(0) })]);

// The operator started as the chart starts it (its rendered Deployment: node flags on the command
// line, MALLOC_ARENA_MAX), so the figures are the installed operator's and a flag node refuses
// fails the bench; BENCH_OPERATOR_NODE_FLAGS / MALLOC_ARENA_MAX replace them to measure others.
const launch = renderOperatorLaunch();
const nodeFlags = process.env.BENCH_OPERATOR_NODE_FLAGS?.split(' ').filter(Boolean) ?? launch.nodeFlags;
const mallocArenaMax = process.env[ENV.mallocArenaMax] ?? launch.env[ENV.mallocArenaMax] ?? '';
const probeFile = join(cp.dir, 'operator-memory.jsonl');
const port = await freePort();
const op = scope.own(
  startProcess(
    'operator',
    process.execPath,
    [
      '--import',
      pathToFileURL(join('dist', 'benchmarks', 'memory-probe.js')).href,
      ...(process.env.BENCH_TRACE_GC === '1' ? ['--trace-gc'] : []),
      ...nodeFlags,
      launch.script,
      ...launch.args,
      '--leader-elect=false',
      `--http-port=${port}`,
      '--http-host=127.0.0.1',
      `--discord-api-url=${sim.apiUrl}`,
      `--log-level=${process.env.BENCH_LOG_LEVEL ?? 'info'}`,
      // The operator's default unless set, to measure others.
      ...(process.env.BENCH_MAX_CONCURRENT_RECONCILES
        ? [`--max-concurrent-reconciles=${process.env.BENCH_MAX_CONCURRENT_RECONCILES}`]
        : []),
    ],
    join(cp.dir, 'operator.log'),
    {
      env: {
        ...process.env,
        KUBECONFIG: cp.kubeconfigPath,
        MEMORY_PROBE_FILE: probeFile,
        MEMORY_PROBE_PEAK_SNAPSHOT_MB: process.env.BENCH_HEAP_PEAK_SNAPSHOT_MB ?? '',
        MEMORY_PROBE_HEAP_PROFILE: process.env.BENCH_HEAP_PROFILE ?? '',
        [ENV.mallocArenaMax]: mallocArenaMax,
      },
    },
  ),
  (p) => p.stop(),
);
await waitUntil(
  'operator caches synced (/readyz)',
  async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok,
  { process: op, timeoutMs: 120_000, intervalMs: 200 },
);

const tokenSecret = (i: number) => (sharedToken ? 'bench-discord' : `bot-${i}-discord`);
const bot = (i: number) => ({
  apiVersion: 'shardwarden.io/v1alpha1',
  kind: 'DiscordBot',
  metadata: { name: `bot-${i}`, namespace: NS },
  spec: {
    image: 'example/bot:1',
    tokenSecretRef: { name: tokenSecret(i) },
    redis: { urlSecretRef: { name: 'bench-redis' } },
  },
});
// The bots' token Secrets exist before the bots, as the shared ones of earlier runs did, so
// the converge timings compare (and measure the operator, not kubectl applying Secrets).
if (!sharedToken)
  apply(Array.from({ length: bots }, (_, i) => secret(tokenSecret(i), { token: tokenOf(i) })));

/**
 * Creates the bots as fast as the apiserver takes them, `BENCH_APPLY_PARALLEL` (16) at a time, as
 * a GitOps tool syncing many objects does. One kubectl apply sends them one after another: at
 * 150 ms an object on the loaded machine, 800 bots took 120 s before the last one existed, which
 * is kubectl's time, not the operator's.
 */
async function createAtOnce(objects: ReturnType<typeof bot>[]): Promise<void> {
  const queue = [...objects];
  const one = async (): Promise<void> => {
    for (let body = queue.shift(); body; body = queue.shift())
      await custom.createNamespacedCustomObject({
        group: 'shardwarden.io',
        version: 'v1alpha1',
        namespace: NS,
        plural: 'discordbots',
        body,
      });
  };
  await Promise.all(Array.from({ length: setting('BENCH_APPLY_PARALLEL', 16) }, one));
}

async function converged(): Promise<number> {
  const list = (await custom.listNamespacedCustomObject({
    group: 'shardwarden.io',
    version: 'v1alpha1',
    namespace: NS,
    plural: 'discordbots',
  })) as { items: DiscordBot[] };
  return list.items.filter(
    (b) => b.status?.plan?.shards && b.status.observedGeneration === b.metadata.generation,
  ).length;
}

/**
 * Applies bots [from, to) at once; seconds until all `to` bots have a plan for their
 * generation, and the stages on the way: the apply itself, the first, half and all of the new
 * bots converged, the count every 10 s, and what the operator did per new bot meanwhile.
 */
async function applyAndConverge(from: number, to: number) {
  const before = await operatorFigures();
  const start = performance.now();
  const since = () => Number(((performance.now() - start) / 1000).toFixed(1));
  // The operator works on the first bots while the rest are created: polled meanwhile, and
  // every stage counts from the start of the creation, as the converge time does.
  let applySeconds: number | undefined;
  const creating = createAtOnce(Array.from({ length: to - from }, (_, i) => bot(from + i))).then(
    () => (applySeconds = since()),
  );
  const stages: Record<string, number> = {};
  const per10s: number[] = [];
  await waitUntil(
    `${to} bots converged`,
    async () => {
      const n = (await converged()) - from;
      const t = since();
      for (const [stage, count] of [
        ['first', 1],
        ['half', Math.ceil((to - from) / 2)],
        ['all', to - from],
      ] as const)
        if (n >= count) stages[stage] ??= t;
      per10s[Math.floor(t / 10)] = n;
      return n === to - from;
    },
    { process: op, timeoutMs: 900_000, intervalMs: 1_000 },
  );
  await creating;
  return {
    seconds: (performance.now() - start) / 1000,
    stages: {
      applySeconds,
      firstConvergedSeconds: stages.first,
      halfConvergedSeconds: stages.half,
      allConvergedSeconds: stages.all,
      convergedEvery10s: Array.from(per10s, (n, i) => n ?? per10s[i - 1] ?? 0),
    },
    operator: perBot(before, await operatorFigures(), to - from),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function timed(step: () => unknown): Promise<number> {
  const start = performance.now();
  await step();
  return Number(((performance.now() - start) / 1000).toFixed(1));
}

interface Sample {
  t: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  heapSnapshot?: string;
  peakHeapSnapshot?: string;
  heapProfile?: string;
  heapProfileError?: string;
}
const samples = (): Sample[] =>
  readFileSync(probeFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Sample);
/** Where the probe wrote the heap snapshot at the peak and the sampling heap profile (or why not), if asked. */
const heapLooks = () =>
  Object.fromEntries(
    samples().flatMap((s) =>
      (['peakHeapSnapshot', 'heapProfile', 'heapProfileError'] as const).flatMap((k) =>
        s[k] ? [[k, s[k]]] : [],
      ),
    ),
  );
const memorySince = (since: number) => {
  const s = samples().filter((x) => x.t >= since && x.rss);
  const peak = (k: keyof Sample) => Math.round(Math.max(...s.map((x) => x[k] as number)) / MiB);
  const last = s[s.length - 1]!;
  return {
    peakRssMb: peak('rss'),
    peakHeapUsedMb: peak('heapUsed'),
    peakHeapTotalMb: peak('heapTotal'),
    peakExternalMb: peak('external'),
    settled: {
      rssMb: Math.round(last.rss / MiB),
      heapUsedMb: Math.round(last.heapUsed / MiB),
      heapTotalMb: Math.round(last.heapTotal / MiB),
      externalMb: Math.round(last.external / MiB),
      arrayBuffersMb: Math.round(last.arrayBuffers / MiB),
    },
  };
};

/** CPU seconds so far of the control plane's processes (their command lines name its folder). */
function controlPlaneCpu(): Record<string, number> {
  const cpu: Record<string, number> = {};
  for (const pid of processesMentioning(cp.dir)) {
    try {
      const name = basename(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '');
      if (CONTROL_PLANE_BINARIES.includes(name)) cpu[name] = (cpu[name] ?? 0) + cpuSeconds(pid);
    } catch {
      // The process ended meanwhile.
    }
  }
  return cpu;
}
const CONTROL_PLANE_BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager'];

/** A metric's samples from the operator's /metrics: `label value` (or '' unlabelled) → value. */
const series = (text: string, name: string, label = '') =>
  Object.fromEntries(
    [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))]
      .filter((m) => !/le="/.test(m[1] ?? ''))
      .map((m) => [(m[1] ?? '').match(new RegExp(`${label}="([^"]*)"`))?.[1] ?? '', Number(m[2])]),
  );
const metricsText = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const requestsByVerb = async () =>
  series(await metricsText(), 'shardwarden_operator_apiserver_requests_total', 'verb');

/** The operator's counters that say where a convergence's time went. */
async function operatorFigures() {
  const text = await metricsText();
  const m = (name: string, label = '') => series(text, `shardwarden_operator_${name}`, label);
  return {
    requests: m('apiserver_requests_total', 'verb'),
    requestSeconds: m('apiserver_request_duration_seconds_sum', 'verb'),
    requestCount: m('apiserver_request_duration_seconds_count', 'verb'),
    discord: m('discord_requests_total', 'status'),
    reconciles: m('reconcile_total', 'result'),
    reconcileSeconds: m('reconcile_duration_seconds_sum', 'result'),
    waitSeconds: m('workqueue_wait_seconds_sum')[''] ?? 0,
    waits: m('workqueue_wait_seconds_count')[''] ?? 0,
  };
}
type OperatorFigures = Awaited<ReturnType<typeof operatorFigures>>;
const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const delta = (from: Record<string, number>, to: Record<string, number>) =>
  Object.fromEntries(Object.entries(to).map(([k, n]) => [k, n - (from[k] ?? 0)] as const));

/**
 * What the operator did between two readings, per bot applied: requests per verb, Discord
 * calls per status, reconciles; and per request or reconcile, the mean time (inflated on a
 * loaded machine; the counts are not).
 */
function perBot(a: OperatorFigures, b: OperatorFigures, n: number) {
  const per = (o: Record<string, number>) =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v / n)]));
  const requests = delta(a.requests, b.requests);
  const seconds = delta(a.requestSeconds, b.requestSeconds);
  const count = delta(a.requestCount, b.requestCount);
  const reconciles = delta(a.reconciles, b.reconciles);
  const waits = b.waits - a.waits;
  return {
    bots: n,
    apiserverRequests: requests,
    apiserverRequestsPerBot: per(requests),
    meanRequestMs: Object.fromEntries(
      Object.entries(count)
        .filter(([, c]) => c > 0)
        .map(([verb, c]) => [verb, Math.round(((seconds[verb] ?? 0) * 1000) / c)]),
    ),
    discordRequestsByStatus: delta(a.discord, b.discord),
    reconciles,
    reconcilesPerBot: round(sum(reconciles) / n),
    meanReconcileMs: Math.round(
      (sum(delta(a.reconcileSeconds, b.reconcileSeconds)) * 1000) / sum(reconciles),
    ),
    meanQueueWaitMs: waits ? Math.round(((b.waitSeconds - a.waitSeconds) * 1000) / waits) : 0,
  };
}
const total = sum;
const reconcilesSoFar = async () =>
  sum(series(await metricsText(), 'shardwarden_operator_reconcile_total', 'result'));
/**
 * The operator's CPU seconds and reconciles at one point of the run: CPU time holds on a loaded
 * machine, and says what a GC flag costs per reconcile.
 */
const cpuMark = async () => ({
  cpu: cpuSeconds(op.child.pid!),
  controlPlane: controlPlaneCpu(),
  at: performance.now(),
  reconciles: await reconcilesSoFar(),
});
type CpuMark = Awaited<ReturnType<typeof cpuMark>>;
const cpuBetween = (from: CpuMark, to: CpuMark) => ({
  cpuSeconds: Number((to.cpu - from.cpu).toFixed(2)),
  reconciles: to.reconciles - from.reconciles,
  cpuMsPerReconcile: Number(
    (((to.cpu - from.cpu) * 1000) / Math.max(1, to.reconciles - from.reconciles)).toFixed(2),
  ),
  // Whether the machine, not the operator, bounded the phase: the control plane's CPU seconds
  // beside the operator's, over the phase's wall seconds.
  wallSeconds: Number(((to.at - from.at) / 1000).toFixed(1)),
  controlPlaneCpuSeconds: Object.fromEntries(
    Object.entries(to.controlPlane).map(([name, s]) => [
      name,
      Number((s - (from.controlPlane[name] ?? 0)).toFixed(2)),
    ]),
  ),
});
/** Requests per verb sent between two readings of the counters. */
const sentBetween = (from: Record<string, number>, to: Record<string, number>) =>
  Object.fromEntries(
    Object.entries(to)
      .map(([verb, n]) => [verb, n - (from[verb] ?? 0)] as const)
      .filter(([, n]) => n > 0),
  );

/**
 * Waits until the operator has sent no request for `quietSeconds` (at most `timeoutSeconds`).
 * Bots converge (a plan in status) long before the controller-manager, at its own request rate,
 * has created every workload's pods and written their status; each of those updates is a
 * reconcile that may write the bot's status. Returns how long that tail lasted and what it sent.
 */
async function waitForQuiet(quietSeconds: number, timeoutSeconds: number) {
  const start = performance.now();
  const first = await requestsByVerb();
  let last = first;
  let lastRequestAt = start;
  /** Requests sent in each 10 s of the tail, to tell a decaying tail from a steady rate. */
  const per10s: number[] = [];
  const elapsed = (since: number) => (performance.now() - since) / 1000;
  while (elapsed(lastRequestAt) < quietSeconds && elapsed(start) < timeoutSeconds) {
    await sleep(1_000);
    const now = await requestsByVerb();
    if (total(now) !== total(last)) lastRequestAt = performance.now();
    const bucket = Math.floor(elapsed(start) / 10);
    per10s[bucket] = (per10s[bucket] ?? 0) + total(now) - total(last);
    last = now;
  }
  return {
    quiet: elapsed(lastRequestAt) >= quietSeconds,
    tailSeconds: Number(((lastRequestAt - start) / 1000).toFixed(1)),
    tailRequests: sentBetween(first, last),
    tailRequestsPer10s: Array.from(per10s, (n) => n ?? 0),
  };
}

// 1. The first bots, then the operator settles (the controller-manager finishes their workloads).
const runStart = Date.now();
const atStart = await cpuMark();
const first = await applyAndConverge(0, firstBots);
const firstSeconds = first.seconds;
await sleep(15_000);
const afterFirst = memorySince(runStart).settled;
progress({ firstBots, secondsToConvergeFirstBots: firstSeconds, afterFirst, first });

// 2. The rest, at once.
const beforeRest = await cpuMark();
const rest = firstBots < bots ? await applyAndConverge(firstBots, bots) : undefined;
const restSeconds = rest?.seconds ?? 0;
const afterRest = await cpuMark();
progress({ bots, secondsToConvergeAllBots: restSeconds, rest, memory: memorySince(runStart) });

// 3. The tail of convergence, then idle: what does an operator that has nothing to do send?
const tail = await waitForQuiet(quietSeconds, quietTimeoutSeconds);
progress({ tail });
const before = await requestsByVerb();
await sleep(idleSeconds * 1000);
const idleRequestsByVerb = sentBetween(before, await requestsByVerb());
const idleRequests = total(idleRequestsByVerb);
progress({ idleRequests, idleRequestsByVerb, idleSeconds });

// 4. Spec edits with every bot present: the time from the edit to its StatefulSet's new template.
/** StatefulSet name → the image it waits for, and what to call when the watch shows it. */
const waiting = new Map<string, { image: string; seen: () => void }>();
const watch = await new Watch(kc).watch(
  `/apis/apps/v1/namespaces/${NS}/statefulsets`,
  {},
  (_phase, sts: V1StatefulSet) => {
    const w = waiting.get(sts.metadata?.name ?? '');
    if (w && sts.spec?.template.spec?.containers[0]?.image === w.image) w.seen();
  },
  () => undefined,
);
scope.own(watch, (w) => w.abort());
const latenciesMs: number[] = [];
for (let i = 0; i < edits; i++) {
  const name = `bot-${i % bots}`;
  const sts = `${name}-gateway`;
  const image = `example/bot:edit-${i}`;
  const changed = new Promise<void>((seen) => waiting.set(sts, { image, seen }));
  const start = performance.now();
  await custom.patchNamespacedCustomObject(
    {
      group: 'shardwarden.io',
      version: 'v1alpha1',
      namespace: NS,
      plural: 'discordbots',
      name,
      body: { spec: { image } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await Promise.race([
    changed,
    sleep(60_000).then(() => Promise.reject(new Error(`${sts} not updated in 60 s`))),
  ]);
  latenciesMs.push(performance.now() - start);
  waiting.delete(sts);
}
const sorted = [...latenciesMs].sort((a, b) => a - b);
const pct = (p: number) =>
  Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);

// 5. Memory over the whole run, and a heap snapshot of the settled operator when asked.
await sleep(5_000);
const memory = memorySince(runStart);
const atEnd = await cpuMark();
let heapSnapshot: string | undefined;
if (process.env.BENCH_HEAP_SNAPSHOT === '1' || process.env.BENCH_HEAP_PROFILE === '1') {
  op.child.kill('SIGUSR2');
  await waitUntil('heap snapshot', async () => samples().some((s) => s.heapSnapshot), { timeoutMs: 120_000 });
  heapSnapshot = samples().find((s) => s.heapSnapshot)!.heapSnapshot;
}
const ownedObjects = cp
  .kubectl([
    'get',
    'statefulsets,deployments,services,configmaps',
    '-n',
    NS,
    '-o',
    'name',
    '-l',
    'app.kubernetes.io/managed-by=shardwarden',
  ])
  .trim()
  .split('\n').length;

const idleRequestsPerMinute = Math.round((idleRequests * 60) / idleSeconds);
const secondsToConvergeAllBots = Number(restSeconds.toFixed(1));
printFigures(
  {
    bots,
    operatorProcess: {
      nodeFlags,
      mallocArenaMax,
      maxConcurrentReconciles: process.env.BENCH_MAX_CONCURRENT_RECONCILES ?? 'default',
    },
    unrelatedSecrets: unrelated,
    unrelatedConfigMaps: unrelated,
    secondsToApplyUnrelatedObjects: unrelatedSecretsSeconds,
    ownedObjects,
    firstBots,
    secondsToConvergeFirstBots: Number(firstSeconds.toFixed(1)),
    operatorAfterFirstBotsSettled: afterFirst,
    convergeFirstBots: { stages: first.stages, operator: first.operator },
    secondsToConvergeAllBots,
    ...(rest ? { convergeRestBots: { stages: rest.stages, operator: rest.operator } } : {}),
    sharedToken,
    tailOfConvergence: { ...tail, quietSeconds },
    idleWindowSeconds: idleSeconds,
    apiserverRequestsPerMinuteIdle: idleRequestsPerMinute,
    idleRequestsByVerb,
    specEditToStatefulSetMs: { edits: latenciesMs.length, p50: pct(50), p99: pct(99), max: pct(100) },
    operatorMemory: memory,
    operatorCpu: {
      firstBots: cpuBetween(atStart, beforeRest),
      restAtOnce: cpuBetween(beforeRest, afterRest),
      wholeRun: cpuBetween(atStart, atEnd),
    },
    ...(heapSnapshot ? { heapSnapshot } : {}),
    ...heapLooks(),
    requestsByVerbTotal: await requestsByVerb(),
  },
  [
    atMost(`operator RSS (MB) after ${firstBots} bots converge`, afterFirst.rssMb, 120),
    atMost(
      `operator peak RSS (MB) with ${bots} bots + ${unrelated} unrelated Secrets`,
      memory.peakRssMb,
      200,
    ),
    atMost(
      `seconds until ${bots} bots converge (${bots - firstBots} applied at once, ${firstBots} present)`,
      secondsToConvergeAllBots,
      60,
    ),
    atMost(`spec edit → StatefulSet updated, p99 ms, ${bots} bots present`, pct(99), 1000),
    atMost('apiserver requests/min idle', idleRequestsPerMinute, 0),
  ],
);
await scope.stop();
