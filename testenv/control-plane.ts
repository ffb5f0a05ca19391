// The envtest of this project: a real etcd and kube-apiserver on free loopback ports, and
// on request kube-controller-manager, kube-scheduler and kwok so that workloads get pods that
// are scheduled onto fake nodes and become Running/Ready without a kubelet.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { kubeBinary } from './binaries.js';
import { freePort } from './ports.js';
import { hostAddress } from './host-address.js';
import { startProcess, waitUntil, type ManagedProcess } from './processes.js';
import { makeTempDir } from './tempdir.js';
import { EXTERNAL_READINESS_STAGES_YAML } from './kwok-stages.js';

export interface ControlPlaneOptions {
  /** Also run kube-controller-manager (garbage collector, StatefulSet/Deployment controllers). */
  controllers?: boolean;
  /** Also run kube-scheduler. */
  scheduler?: boolean;
  /** Run kwok and register this many fake nodes (implies controllers and scheduler). */
  kwokNodes?: number;
  /**
   * Who makes kwok pods Ready: `kwok` (default) marks them Ready as soon as they are scheduled;
   * `external` leaves them unready for a process runner (testenv/pod-runner.ts) to set from the
   * real process's readiness, so controllers never act on a pod that is not serving yet.
   */
  podReadiness?: 'kwok' | 'external';
  /**
   * Serve the apiserver on the machine's address too and publish that as the endpoint of the
   * `kubernetes` Service, so pods on a real node (testenv/real-node.ts) reach it as in a cluster.
   */
  podAccess?: boolean;
  /**
   * Admission plugins to enable besides the apiserver's defaults, e.g.
   * `OwnerReferencesPermissionEnforcement` (setting blockOwnerDeletion needs `update` on the
   * owner's `finalizers`).
   */
  admissionPlugins?: string[];
}

export interface ControlPlane {
  readonly url: string;
  /** Path of an admin kubeconfig, for kubectl, helm and operator processes. */
  readonly kubeconfigPath: string;
  readonly dir: string;
  /** With `podAccess`: the machine address pods reach the apiserver at (the `kubernetes` Service's endpoint). */
  readonly podAddress?: string;
  kubeConfig(): KubeConfig;
  /**
   * A client for user `name` (a client certificate from the test CA), with no permissions but
   * what RBAC grants that user: for running something with a restricted identity.
   */
  userKubeConfig(name: string): KubeConfig;
  /** Runs kubectl against this control plane and returns stdout. */
  kubectl(args: string[], input?: string): string;
  /** Server-side applies CRD YAML and waits until every CRD in it is Established. */
  applyCrds(path: string): Promise<void>;
  /** Waits until the CRDs kubectl names by these arguments (`-f file`, `crd/name` …) are Established. */
  waitForCrds(...targets: string[]): Promise<void>;
  /** Stops and starts kube-apiserver on the same port with the same etcd data. */
  restartApiserver(): Promise<void>;
  stop(): Promise<void>;
}

export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A test CA in `dir` (`ca.key`, `ca.crt`), for issueCertificate(dir, ...). */
export function makeTestCa(dir: string): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '3650',
      '-subj',
      '/CN=shardwarden-test-ca',
    ],
    dir,
  );
}

function makeCertificates(dir: string, extraIp: string | undefined): void {
  makeTestCa(dir);
  issueCertificate(dir, dir, 'apiserver', {
    subject: '/CN=kube-apiserver',
    altNames:
      'IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc' +
      (extraIp ? `,IP:${extraIp}` : ''),
  });
  // What the apiserver shows a kubelet for `kubectl logs/exec` (system:masters may do both).
  issueCertificate(dir, dir, 'kubelet-client', {
    subject: '/O=system:masters/CN=kube-apiserver-kubelet-client',
  });
  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

/**
 * Writes `<name>.key` and `<name>.crt` into `outDir`, signed by the test CA in `caDir` (a
 * control plane's `dir`). `subject` is an openssl subject: `/O=<group>/CN=<user>` for a client.
 */
export function issueCertificate(
  caDir: string,
  outDir: string,
  name: string,
  options: { subject: string; altNames?: string },
): { certFile: string; keyFile: string } {
  const [keyFile, certFile, csr] = [`${name}.key`, `${name}.crt`, `${name}.csr`].map((f) => join(outDir, f));
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile!,
      '-out',
      csr!,
      '-subj',
      options.subject,
    ],
    outDir,
  );
  const ext = join(outDir, `${name}.ext`);
  writeFileSync(
    ext,
    options.altNames ? `subjectAltName=${options.altNames}\n` : 'basicConstraints=CA:FALSE\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr!,
      '-CA',
      join(caDir, 'ca.crt'),
      '-CAkey',
      join(caDir, 'ca.key'),
      '-CAcreateserial',
      '-out',
      certFile!,
      '-days',
      '3650',
      '-extfile',
      ext,
    ],
    outDir,
  );
  return { certFile: certFile!, keyFile: keyFile! };
}

/** A kubeconfig for `server`, trusting the test CA, as a token or a client-certificate user. */
export function kubeconfigYaml(
  server: string,
  caData: string,
  user: { token: string } | { certFile: string; keyFile: string },
): string {
  const credentials =
    'token' in user
      ? [`    token: ${user.token}`]
      : [`    client-certificate: ${user.certFile}`, `    client-key: ${user.keyFile}`];
  return [
    'apiVersion: v1',
    'kind: Config',
    'current-context: shardwarden-test',
    'clusters:',
    '- name: shardwarden-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${caData}`,
    'users:',
    '- name: admin',
    '  user:',
    ...credentials,
    'contexts:',
    '- name: shardwarden-test',
    '  context: { cluster: shardwarden-test, user: admin, namespace: default }',
    '',
  ].join('\n');
}

/** GET that is true on 2xx; trusts `ca` (our test CA) or, for components' self-signed health ports, nothing. */
export function httpOk(
  url: string,
  options: { token?: string; ca?: Buffer; insecure?: boolean } = {},
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const req = get(
      url,
      {
        headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
        ca: options.ca,
        rejectUnauthorized: !options.insecure,
        timeout: 5_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const kwokNodes = options.kwokNodes ?? 0;
  const controllers = options.controllers || kwokNodes > 0;
  const scheduler = options.scheduler || kwokNodes > 0;
  const tmp = makeTempDir('controlplane');
  const dir = tmp.path;
  const procs: ManagedProcess[] = [];
  const started = (p: ManagedProcess) => (procs.push(p), p);
  const stopAll = async () => {
    for (const p of [...procs].reverse()) await p.stop();
    procs.length = 0;
  };

  try {
    const podAddress = options.podAccess ? hostAddress() : undefined;
    if (options.podAccess && !podAddress)
      throw new Error('podAccess: the machine has no non-loopback IPv4 address');
    makeCertificates(dir, podAddress);
    const ca = readFileSync(join(dir, 'ca.crt'));
    const token = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${token},shardwarden-admin,shardwarden-admin,system:masters\n`);

    // etcd
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = started(
      startProcess(
        'etcd',
        kubeBinary('etcd'),
        [
          '--data-dir',
          join(dir, 'etcd'),
          '--listen-client-urls',
          etcdUrl,
          '--advertise-client-urls',
          etcdUrl,
          '--listen-peer-urls',
          `http://127.0.0.1:${peerPort}`,
          '--initial-advertise-peer-urls',
          `http://127.0.0.1:${peerPort}`,
          '--initial-cluster',
          `default=http://127.0.0.1:${peerPort}`,
          '--unsafe-no-fsync',
          '--log-level',
          'warn',
        ],
        join(dir, 'etcd.log'),
      ),
    );
    await waitUntil('etcd /health', () => httpOk(`${etcdUrl}/health`), { process: etcd, timeoutMs: 30_000 });

    // kube-apiserver
    const url = `https://127.0.0.1:${apiPort}`;
    const apiserverArgs = [
      '--etcd-servers',
      etcdUrl,
      '--bind-address',
      podAddress ? '0.0.0.0' : '127.0.0.1',
      '--advertise-address',
      podAddress ?? '127.0.0.1',
      '--secure-port',
      String(apiPort),
      '--tls-cert-file',
      join(dir, 'apiserver.crt'),
      '--tls-private-key-file',
      join(dir, 'apiserver.key'),
      '--client-ca-file',
      join(dir, 'ca.crt'),
      '--token-auth-file',
      join(dir, 'tokens.csv'),
      '--authorization-mode',
      'Node,RBAC',
      '--service-account-issuer',
      'https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file',
      join(dir, 'sa.pub'),
      '--service-account-signing-key-file',
      join(dir, 'sa.key'),
      '--service-cluster-ip-range',
      '10.0.0.0/24',
      '--allow-privileged=true',
      '--kubelet-client-certificate',
      join(dir, 'kubelet-client.crt'),
      '--kubelet-client-key',
      join(dir, 'kubelet-client.key'),
      // Reach kubelets at their node IP: node names are not in DNS.
      '--kubelet-preferred-address-types',
      'InternalIP,Hostname',
      // With pod access the apiserver keeps the `kubernetes` Service's endpoint at its address.
      '--endpoint-reconciler-type',
      podAddress ? 'lease' : 'none',
      ...(options.admissionPlugins?.length
        ? ['--enable-admission-plugins', options.admissionPlugins.join(',')]
        : []),
      '-v',
      '1',
    ];
    let apiserver: ManagedProcess;
    const startApiserver = async () => {
      apiserver = started(
        startProcess(
          'kube-apiserver',
          kubeBinary('kube-apiserver'),
          apiserverArgs,
          join(dir, 'kube-apiserver.log'),
        ),
      );
      await waitUntil('kube-apiserver /readyz', () => httpOk(`${url}/readyz`, { token, ca }), {
        process: apiserver,
        timeoutMs: 90_000,
        intervalMs: 250,
      });
    };
    await startApiserver();

    const caData = ca.toString('base64');
    const kubeconfig = kubeconfigYaml(url, caData, { token });
    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfig, { mode: 0o600 });

    const kubectl = (args: string[], input?: string) =>
      execFileSync(kubeBinary('kubectl'), ['--kubeconfig', kubeconfigPath, ...args], {
        encoding: 'utf8',
        input,
        stdio: ['pipe', 'pipe', 'pipe'],
      });

    if (controllers) {
      const port = await freePort();
      const cm = started(
        startProcess(
          'kube-controller-manager',
          kubeBinary('kube-controller-manager'),
          [
            '--kubeconfig',
            kubeconfigPath,
            '--authentication-kubeconfig',
            kubeconfigPath,
            '--authorization-kubeconfig',
            kubeconfigPath,
            '--bind-address',
            '127.0.0.1',
            '--secure-port',
            String(port),
            '--leader-elect=false',
            '--service-account-private-key-file',
            join(dir, 'sa.key'),
            '--root-ca-file',
            join(dir, 'ca.crt'),
            '--cluster-signing-cert-file',
            join(dir, 'ca.crt'),
            '--cluster-signing-key-file',
            join(dir, 'ca.key'),
            '--controllers',
            '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller',
            // Keep the garbage collector and workload controllers snappy for tests.
            '--concurrent-gc-syncs',
            '5',
            // A node whose heartbeat is late has all its pods marked NotReady. kwok's heartbeats
            // came over 60 s apart on a loaded 2-core machine (a reshard test then saw every
            // pod of the node drop at once); no test here is about a node going away.
            '--node-monitor-grace-period',
            '10m',
            '--node-startup-grace-period',
            '10m',
            '-v',
            '1',
          ],
          join(dir, 'kube-controller-manager.log'),
        ),
      );
      await waitUntil(
        'kube-controller-manager /healthz',
        () => httpOk(`https://127.0.0.1:${port}/healthz`, { token, insecure: true }),
        {
          process: cm,
          timeoutMs: 60_000,
          intervalMs: 250,
        },
      );
    }
    if (scheduler) {
      const port = await freePort();
      const sched = started(
        startProcess(
          'kube-scheduler',
          kubeBinary('kube-scheduler'),
          [
            '--kubeconfig',
            kubeconfigPath,
            '--authentication-kubeconfig',
            kubeconfigPath,
            '--authorization-kubeconfig',
            kubeconfigPath,
            '--bind-address',
            '127.0.0.1',
            '--secure-port',
            String(port),
            '--leader-elect=false',
            '-v',
            '1',
          ],
          join(dir, 'kube-scheduler.log'),
        ),
      );
      await waitUntil(
        'kube-scheduler /healthz',
        () => httpOk(`https://127.0.0.1:${port}/healthz`, { token, insecure: true }),
        {
          process: sched,
          timeoutMs: 60_000,
          intervalMs: 250,
        },
      );
    }
    if (kwokNodes > 0) {
      const port = await freePort();
      const kwok = started(
        startProcess(
          'kwok',
          kubeBinary('kwok'),
          [
            '--kubeconfig',
            kubeconfigPath,
            '--manage-all-nodes=false',
            `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
            '--server-address',
            `127.0.0.1:${port}`,
            '--cidr',
            '10.244.0.0/16',
            '--node-ip',
            '10.244.0.1',
            ...(options.podReadiness === 'external' ? ['--config', kwokStagesFile(dir)] : []),
          ],
          join(dir, 'kwok.log'),
        ),
      );
      await waitUntil('kwok /healthz', () => httpOk(`http://127.0.0.1:${port}/healthz`), {
        process: kwok,
        timeoutMs: 30_000,
      });
      for (let i = 0; i < kwokNodes; i++) kubectl(['apply', '-f', '-'], fakeNode(`kwok-node-${i}`));
      await waitUntil(
        `${kwokNodes} kwok node(s) Ready`,
        async () => {
          const out = kubectl([
            'get',
            'nodes',
            '-o',
            'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
          ]);
          return out.split('\n').filter((s) => s === 'True').length >= kwokNodes;
        },
        { process: kwok, timeoutMs: 60_000, intervalMs: 500 },
      );
    }

    const waitForCrds = async (...targets: string[]) => {
      // Polled rather than `kubectl wait`, which fails ("accessor error") instead of waiting
      // when it reads a CRD before the apiserver has given it any status conditions.
      type Crd = { status?: { conditions?: { type: string; status: string }[] } };
      await waitUntil(
        `CRDs ${targets.join(' ')} Established`,
        async () => {
          const got = JSON.parse(kubectl(['get', ...targets, '-o', 'json'])) as Crd & { items?: Crd[] };
          return (got.items ?? [got]).every(
            (crd) =>
              crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false,
          );
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
    };
    return {
      url,
      kubeconfigPath,
      dir,
      podAddress,
      kubeConfig() {
        const kc = new KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        return kc;
      },
      userKubeConfig(name: string) {
        const path = join(dir, `user-${name}.kubeconfig`);
        const cert = issueCertificate(dir, dir, `user-${name}`, { subject: `/CN=${name}` });
        writeFileSync(path, kubeconfigYaml(url, caData, cert), { mode: 0o600 });
        const kc = new KubeConfig();
        kc.loadFromFile(path);
        return kc;
      },
      kubectl,
      async applyCrds(path: string) {
        kubectl(['apply', '--server-side', '-f', path]);
        await waitForCrds('-f', path);
      },
      waitForCrds,
      async restartApiserver() {
        await apiserver.stop();
        procs.splice(procs.indexOf(apiserver), 1);
        await startApiserver();
      },
      async stop() {
        await stopAll();
        tmp.remove();
      },
    };
  } catch (err) {
    await stopAll();
    tmp.remove();
    throw err;
  }
}

function fakeNode(name: string): string {
  // kwok owns nodes with this annotation: it keeps them Ready and runs their pods' lifecycle.
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
      },
    },
    spec: {},
    status: {
      allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
      capacity: { cpu: '32', memory: '256Gi', pods: '110' },
      nodeInfo: { architecture: 'amd64', kubeletVersion: 'fake', operatingSystem: 'linux' },
      phase: 'Running',
    },
  });
}

function kwokStagesFile(dir: string): string {
  const path = join(dir, 'kwok-stages.yaml');
  writeFileSync(path, EXTERNAL_READINESS_STAGES_YAML);
  return path;
}
