// The pod runner on a real control plane with kwok: a StatefulSet's Running pods become local
// processes with the env their spec gives, crash restarts are counted, readiness is mirrored
// into the pod, scale-down and stop() leave nothing running. The entrypoint is a tiny script
// (the real bot is run by the demo test) that serves its env and can be told to crash.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive } from '../support/alive.js';
import {
  makeTempDir,
  startControlPlane,
  startPodRunner,
  waitUntil,
  type ControlPlane,
  type PodRunner,
} from '../../testenv/index.js';

const NS = 'runner';
const SCRIPT = `
import { createServer } from 'node:http';
if (process.argv[2] === 'init') {
  (await import('node:fs')).appendFileSync(process.env.INIT_FILE, process.env.POD_NAME + '\\n');
  process.exit(0);
}
if (process.env.CRASH_FILE && (await import('node:fs')).existsSync(process.env.CRASH_FILE)) {
  (await import('node:fs')).rmSync(process.env.CRASH_FILE);
  process.exit(3);
}
let ready = false;
setTimeout(() => (ready = true), 300);
createServer((req, res) => {
  if (req.url === '/readyz') return res.writeHead(ready ? 200 : 503).end();
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ args: process.argv.slice(2), env: process.env }));
}).listen(Number(process.env.SHARDWARDEN_HTTP_PORT), '127.0.0.1');
process.on('SIGTERM', () => setTimeout(() => process.exit(0), 100));
`;

function statefulSet(replicas: number, crashFile: string, initFile: string) {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'echo', namespace: NS },
    spec: {
      replicas,
      serviceName: 'echo',
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: { app: 'echo' } },
      template: {
        metadata: { labels: { app: 'echo', 'app.kubernetes.io/component': 'gateway' } },
        spec: {
          terminationGracePeriodSeconds: 5,
          initContainers: [
            {
              name: 'setup',
              image: 'example/echo:1',
              args: ['init'],
              env: [
                { name: 'INIT_FILE', value: initFile },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              ],
            },
          ],
          containers: [
            {
              name: 'main',
              image: 'example/echo:1',
              args: ['gateway', '--flag'],
              env: [
                { name: 'PLAIN', value: 'plain' },
                { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'echo-secret', key: 'token' } } },
                { name: 'FROM_CM', valueFrom: { configMapKeyRef: { name: 'echo-config', key: 'mode' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                {
                  name: 'POD_INDEX',
                  valueFrom: { fieldRef: { fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']" } },
                },
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'GREETING', value: 'hello $(POD_NAME) $$(POD_NAME)' },
                { name: 'SHARDWARDEN_HTTP_PORT', value: '8080' },
                { name: 'CRASH_FILE', value: crashFile },
              ],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5 },
            },
          ],
        },
      },
    },
  });
}

type Served = { args: string[]; env: Record<string, string> };
const served = async (port: number) => (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as Served;
describe('pod runner', () => {
  let cp: ControlPlane;
  let runner: PodRunner | undefined;
  const tmp = makeTempDir('pod-runner-test');
  const entrypoint = join(tmp.path, 'echo.mjs');
  const crashFile = join(tmp.path, 'crash-next');
  const initFile = join(tmp.path, 'init-runs');
  const podReady = (name: string) =>
    cp.kubectl([
      'get',
      'pod',
      name,
      '-n',
      NS,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
    ]);

  beforeAll(async () => {
    writeFileSync(entrypoint, SCRIPT);
    // kwok leaves pods unready: Ready comes from the runner's probe of the real process.
    cp = await startControlPlane({ kwokNodes: 1, podReadiness: 'external' });
    cp.kubectl(['create', 'namespace', NS]);
    cp.kubectl(['create', 'secret', 'generic', 'echo-secret', '-n', NS, '--from-literal=token=s3cret']);
    cp.kubectl(['create', 'configmap', 'echo-config', '-n', NS, '--from-literal=mode=demo']);
  }, 150_000);
  afterAll(async () => {
    await runner?.stop();
    await cp?.stop();
    tmp.remove();
  });

  test('Running pods become processes with the env their spec gives; scale-down and stop() end them', async () => {
    runner = await startPodRunner({
      kubeConfig: cp.kubeConfig(),
      namespace: NS,
      labelSelector: 'app=echo',
      entrypoint,
      logDir: tmp.path,
      env: { IMAGE_ENV: 'from-image', PLAIN: 'overridden-by-pod' },
      readinessPeriodMs: 200,
      restartBackoffMs: 200,
    });
    cp.kubectl(['apply', '-f', '-'], statefulSet(2, crashFile, initFile));
    let pods = await runner.waitFor(
      'two ready echo processes',
      (p) => p.length === 2 && p.every((x) => x.ready),
    );
    pods.sort((a, b) => a.name.localeCompare(b.name));
    expect(pods.map((p) => [p.name, p.component])).toEqual([
      ['echo-0', 'gateway'],
      ['echo-1', 'gateway'],
    ]);
    expect(new Set(pods.map((p) => p.httpPort)).size).toBe(2);

    const podIp = cp.kubectl(['get', 'pod', 'echo-1', '-n', NS, '-o', 'jsonpath={.status.podIP}']);
    const { args, env } = await served(pods[1]!.httpPort);
    expect(args).toEqual(['gateway', '--flag']);
    expect(env).toMatchObject({
      PLAIN: 'plain',
      IMAGE_ENV: 'from-image',
      TOKEN: 's3cret',
      FROM_CM: 'demo',
      POD_NAME: 'echo-1',
      POD_NS: NS,
      POD_INDEX: '1',
      POD_IP: podIp,
      NODE_NAME: 'kwok-node-0',
      GREETING: 'hello echo-1 $(POD_NAME)',
      SHARDWARDEN_HTTP_PORT: String(pods[1]!.httpPort),
      SHARDWARDEN_PUBLIC_HTTP_PORT: String(pods[1]!.publicHttpPort),
    });
    expect(podIp).toMatch(/^10\.244\./);
    // Nothing of the runner's own environment leaks in but PATH.
    expect(Object.keys(env).filter((k) => k in process.env && k !== 'PATH')).toEqual([]);
    // The readiness probe's verdict is the pod's Ready condition.
    expect(podReady('echo-0')).toBe('True');

    // A crash is restarted with back-off and counted, on the same ports: SIGKILL, then the
    // first restart exits at once (crash file), the second serves.
    writeFileSync(crashFile, '');
    const { pid: pid0, httpPort: port0 } = pods[0]!;
    process.kill(pid0!, 'SIGKILL');
    pods = await runner.waitFor(
      'echo-0 restarted',
      (p) => p.some((x) => x.name === 'echo-0' && x.restarts === 2 && x.ready && x.pid !== undefined),
      20_000,
    );
    const restarted = pods.find((p) => p.name === 'echo-0')!;
    expect(restarted.pid).not.toBe(pid0);
    expect(restarted.httpPort).toBe(port0);
    expect((await served(port0)).env.POD_NAME).toBe('echo-0');
    await waitUntil(
      'restartCount in the pod status',
      async () =>
        cp.kubectl([
          'get',
          'pod',
          'echo-0',
          '-n',
          NS,
          '-o',
          'jsonpath={.status.containerStatuses[0].restartCount}',
        ]) === '2',
    );

    // Init containers ran once per pod, before its process, and not again on a crash restart.
    expect(readFileSync(initFile, 'utf8').trim().split('\n').sort()).toEqual(['echo-0', 'echo-1']);

    // Scale-down: the pod goes away, and so does its process.
    const pid1 = pods.find((p) => p.name === 'echo-1')!.pid!;
    cp.kubectl(['scale', 'statefulset', 'echo', '-n', NS, '--replicas=1']);
    await runner.waitFor('only echo-0', (p) => p.length === 1 && p[0]!.name === 'echo-0', 30_000);
    expect(alive(pid1)).toBe(false);

    const last = runner.pods()[0]!.pid!;
    await runner.stop();
    runner = undefined;
    expect(alive(last)).toBe(false);
  }, 120_000);
});
