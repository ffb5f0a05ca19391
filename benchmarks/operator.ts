// Benchmark: the operator process against a real control plane and the Discord simulator.
// Prints how long 200 DiscordBots take to converge (objects applied, status written), the
// apiserver requests per minute once nothing changes, and the operator's RSS.
//   BENCH_BOTS (200), BENCH_IDLE_SECONDS (60) override the defaults.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiscordSimulator } from '../discord-simulator/index.js';
import { runScope, startControlPlane, waitUntil } from '../testenv/index.js';
import { rssMb, startProcess } from '../testenv/processes.js';

const bots = Number(process.env.BENCH_BOTS ?? 200);
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 60);

// Whatever ends the run (its end, a failure, Ctrl-C), what it started stops.
const scope = runScope();
const cp = scope.own(await startControlPlane({ controllers: true }), (c) => c.stop());
const sim = scope.own(await DiscordSimulator.start({ guilds: 1500, tokens: ['bench-token'] }), (s) =>
  s.stop(),
);
{
  await cp.applyCrds('crds/shardwarden.io_discordbots.yaml');
  cp.kubectl(['create', 'namespace', 'bench']);
  const secrets = ['discord', 'redis'].map((n) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `bench-${n}`, namespace: 'bench' },
    stringData: { token: 'bench-token', url: 'redis://x' },
  }));
  cp.kubectl(['apply', '-f', '-'], secrets.map((s) => JSON.stringify(s)).join('\n'));

  const op = scope.own(
    startProcess(
      'operator',
      process.execPath,
      [
        join('dist', 'bin', 'shardwarden.js'),
        'operator',
        '--leader-elect=false',
        '--http-port=0',
        '--http-host=127.0.0.1',
        `--discord-api-url=${sim.apiUrl}`,
        '--log-level=info',
      ],
      join(cp.dir, 'operator.log'),
      {
        env: { ...process.env, KUBECONFIG: cp.kubeconfigPath },
      },
    ),
    (p) => p.stop(),
  );
  const docs = Array.from({ length: bots }, (_, i) =>
    JSON.stringify({
      apiVersion: 'shardwarden.io/v1alpha1',
      kind: 'DiscordBot',
      metadata: { name: `bot-${i}`, namespace: 'bench' },
      spec: {
        image: 'example/bot:1',
        tokenSecretRef: { name: 'bench-discord' },
        redis: { urlSecretRef: { name: 'bench-redis' } },
      },
    }),
  );
  const start = performance.now();
  cp.kubectl(['apply', '-f', '-'], docs.join('\n'));
  const applied = performance.now();
  await waitUntil(
    `${bots} bots converged`,
    async () => {
      const out = cp.kubectl([
        'get',
        'dbot',
        '-n',
        'bench',
        '-o',
        'jsonpath={range .items[*]}{.status.shards}/{.status.observedGeneration}/{.metadata.generation}{"\\n"}{end}',
      ]);
      return out.split('\n').filter((l) => /^2\/(\d+)\/\1$/.test(l)).length === bots;
    },
    { process: op, timeoutMs: 600_000, intervalMs: 1000 },
  );
  const converged = performance.now();

  const port = Number(/"port":(\d+)/.exec(readFileSync(op.logFile, 'utf8'))?.[1] ?? 0);
  const byVerb = async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Object.fromEntries(
      [...text.matchAll(/^shardwarden_operator_apiserver_requests_total\{verb="([\w-]+)"\} (\d+)/gm)].map(
        (m) => [m[1]!, Number(m[2])],
      ),
    );
  };
  const requests = async () => Object.values(await byVerb()).reduce((a, b) => a + b, 0);
  // Let the controller-manager finish the workloads (their status feeds ours), then count
  // what an idle operator sends.
  await new Promise((r) => setTimeout(r, 30_000));
  const before = await requests();
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const idleRequests = (await requests()) - before;
  const heapUsedMb =
    Number(
      /^shardwarden_operator_nodejs_heap_size_used_bytes (\S+)/m.exec(
        await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
      )?.[1] ?? 0,
    ) / 1048576;
  const operatorRss = rssMb(op.child.pid!);
  const objects = cp
    .kubectl(['get', 'statefulsets,deployments,services,configmaps', '-n', 'bench', '-o', 'name'])
    .trim()
    .split('\n').length;
  console.log(
    JSON.stringify(
      {
        bots,
        ownedObjects: objects,
        secondsToApplyManifests: Number(((applied - start) / 1000).toFixed(1)),
        secondsToConverge: Number(((converged - start) / 1000).toFixed(1)),
        idleWindowSeconds: idleSeconds,
        apiserverRequestsPerMinuteIdle: Math.round((idleRequests * 60) / idleSeconds),
        operatorRssMb: Math.round(operatorRss),
        operatorHeapUsedMb: Math.round(heapUsedMb),
        requestsByVerbTotal: await byVerb(),
      },
      null,
      2,
    ),
  );
}
await scope.stop();
