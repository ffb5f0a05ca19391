// A real node for a test control plane, as Kubernetes' hack/local-up-cluster.sh makes one:
// containerd (with runc and the CNI bridge plugin) runs the pods, the kubelet registers the node
// and runs their probes, kube-proxy (iptables mode) makes Services work. Everything the node
// makes on the host is named for it or lives under its temp folder, and stop() removes it all:
// mounts, network namespaces, the bridge, the iptables rules, cgroups and containerd's state.
// The host's iptables and the kube-proxy chains are machine-wide, so one real node runs at a
// time on a machine (a lock); a later start sweeps what a killed run left behind.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeBinary } from './binaries.js';
import { httpOk, issueCertificate, kubeconfigYaml, type ControlPlane } from './control-plane.js';
import { ensureDebianPackage } from './debian-packages.js';
import { busyboxRootfs, writeOciArchive } from './oci-image.js';
import { freePort } from './ports.js';
import { hostAddress } from './host-address.js';
import { processesMentioning, startProcess, waitUntil, type ManagedProcess } from './processes.js';
import { makeTempDir } from './tempdir.js';

/** Images every real node has imported (made from Debian's busybox-static, nothing pulled). */
export const NODE_IMAGES = {
  /** busybox with its applets in /bin: httpd, wget, nslookup, sh. */
  busybox: 'shardwarden.local/busybox:1',
  /** The pod sandbox image: busybox sleeping; containerd SIGKILLs it when the pod stops. */
  pause: 'shardwarden.local/pause:1',
  /** CoreDNS built from its Go module (testenv/binaries/build.sh). */
  coredns: 'shardwarden.local/coredns:1',
} as const;

/** The Service IP of cluster DNS (inside the control plane's 10.0.0.0/24 service range). */
export const CLUSTER_DNS_IP = '10.0.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';

export interface RealNode {
  /** The Node's name in the API. */
  readonly name: string;
  readonly dir: string;
  /** The address pods reach the host (and other nodes would reach this one) at. */
  readonly nodeIp: string;
  /** This node's pod network, e.g. 10.244.37.0/24. */
  readonly podSubnet: string;
  /**
   * The bridge's own address (the pods' gateway), up from start: a host service bound here is
   * reachable by this node's pods (their pod IPs as source) and not from the machine's LAN.
   */
  readonly gatewayIp: string;
  readonly bridge: string;
  readonly containerdSocket: string;
  /** `ctr -n k8s.io images import` of an image archive, so pods can use it without a registry. */
  importImage(archive: string): void;
  /** Runs crictl against this node's containerd and returns stdout. */
  crictl(args: string[]): string;
  /** Stops everything and removes every trace from the host; safe to call twice. */
  stop(options?: StopOptions): Promise<void>;
}

export interface StopOptions {
  /**
   * Called once the node's traces are removed, while the machine-wide lock is still held: the
   * host as this node left it, before the next run's node (waiting for the lock) changes it.
   * Only the first stop() calls it.
   */
  beforeRelease?: () => void;
}

/** What sweep() needs to remove a node's traces, saved so a later run can sweep a killed one. */
interface NodeTraces {
  dir: string;
  bridge: string;
  podSubnet: string;
  cgroupRoot: string;
  iptablesBefore: Record<IpTablesFamily, string>;
  ipForwardBefore: string;
  shimDirsExisted: string[];
}

type IpTablesFamily = 'iptables' | 'ip6tables';
const IPTABLES_FAMILIES: IpTablesFamily[] = ['iptables', 'ip6tables'];
const LOCK_FILE = join(tmpdir(), 'shardwarden-real-node.lock');
const TRACES_FILE = join(tmpdir(), 'shardwarden-real-node.json');
const CGROUP_ROOT = '/sys/fs/cgroup';
// containerd's shims put their sockets here whatever the config says; removed when empty.
const SHIM_SOCKET_DIRS = ['/run/containerd/s', '/run/containerd'];
const CNI_BIN_DIR = '/usr/lib/cni';

/**
 * Why a real node cannot run on this machine, or undefined when it can. Tests print this as
 * their skip reason; it names the missing kernel feature or privilege.
 */
export function realNodeUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'a real node needs Linux';
  if (process.getuid?.() !== 0) return 'a real node needs root (containerd, mounts, iptables, cgroups)';
  if (!/\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'))) {
    return 'the kernel has no overlay filesystem (containerd overlayfs snapshotter)';
  }
  if (!existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) {
    try {
      execFileSync('modprobe', ['br_netfilter'], { stdio: 'ignore' });
    } catch {
      /* reported below */
    }
    if (!existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) {
      return 'the kernel has no br_netfilter (Services between pods on one bridge need it)';
    }
  }
  const v1 = ['cpu', 'memory', 'pids'].every((c) => existsSync(join(CGROUP_ROOT, c)));
  const v2 = existsSync(join(CGROUP_ROOT, 'cgroup.controllers'));
  if (!v1 && !v2) return `no cgroup cpu/memory/pids hierarchies under ${CGROUP_ROOT}`;
  if (!hostAddress()) return 'no non-loopback IPv4 address for the node';
  return undefined;
}

// ---- pure rendering --------------------------------------------------------------------------

export interface NodeLayout {
  name: string;
  dir: string;
  nodeIp: string;
  podSubnet: string;
  bridge: string;
  cgroupRoot: string;
  caFile: string;
  containerdSocket: string;
  kubeletPort: number;
  kubeletHealthzPort: number;
  proxyHealthzPort: number;
  proxyMetricsPort: number;
  kubeletKubeconfig: string;
  proxyKubeconfig: string;
}

export function containerdConfig(l: NodeLayout): string {
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${l.dir}/containerd/root"
state = "${l.dir}/containerd/state"
# Only what a CRI node uses; the others would probe or create folders outside ours.
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${l.containerdSocket}"
[ttrpc]
  address = "${l.containerdSocket}.ttrpc"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${l.dir}/containerd/opt"

${cri}]
  sandbox_image = "${NODE_IMAGES.pause}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  enable_selinux = false
  # Pod network namespaces under our state folder, not the machine's /var/run/netns.
  netns_mounts_under_state_dir = true
  # Never below containerd's own oom_score_adj: lowering it needs CAP_SYS_RESOURCE, which
  # root in a container or a restricted VM lacks (runc then fails with "final child's PID").
  restrict_oom_score_adj = true
${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "${l.dir}/runc"
${cri}.cni]
  bin_dir = "${CNI_BIN_DIR}"
  conf_dir = "${l.dir}/cni/net.d"
  max_conf_num = 1
`;
}

/** The pods' gateway on a /24 pod subnet: its first address, which the bridge holds. */
export function podGateway(podSubnet: string): string {
  const match = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(podSubnet);
  if (!match) throw new Error(`podSubnet: expected a /24 like 10.244.7.0/24, got ${podSubnet}`);
  return `${match[1]}.1`;
}

export function cniConfig(l: NodeLayout): object {
  return {
    cniVersion: '0.4.0',
    name: l.name,
    plugins: [
      {
        type: 'bridge',
        bridge: l.bridge,
        isGateway: true,
        ipMasq: true,
        // A pod reaching itself through its Service goes out and back in on the same port.
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: l.podSubnet, gateway: podGateway(l.podSubnet) }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: join(l.dir, 'cni', 'ipam'),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export function kubeletConfig(l: NodeLayout): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: l.nodeIp,
    port: l.kubeletPort,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: l.kubeletHealthzPort,
    // The apiserver proves itself with the kubelet-client certificate; everyone else asks RBAC.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: l.caFile },
    },
    authorization: { mode: 'Webhook' },
    cgroupDriver: 'cgroupfs',
    cgroupRoot: l.cgroupRoot,
    containerRuntimeEndpoint: `unix://${l.containerdSocket}`,
    clusterDNS: [CLUSTER_DNS_IP],
    clusterDomain: CLUSTER_DOMAIN,
    podLogsDir: join(l.dir, 'pod-logs'),
    failSwapOn: false,
    // Imported images cannot be pulled again: never garbage-collect them, never evict for a
    // nearly full disk that the machine's other users fill.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '50Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    serializeImagePulls: false,
    registerNode: true,
    rotateCertificates: false,
  };
}

export function kubeProxyConfig(l: NodeLayout): object {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig: l.proxyKubeconfig },
    hostnameOverride: l.name,
    clusterCIDR: l.podSubnet,
    nodePortAddresses: ['primary'],
    bindAddress: '127.0.0.1',
    healthzBindAddress: `127.0.0.1:${l.proxyHealthzPort}`,
    metricsBindAddress: `127.0.0.1:${l.proxyMetricsPort}`,
    // Leave the machine's conntrack and route_localnet sysctls as they are.
    conntrack: { maxPerCore: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    iptables: { localhostNodePorts: false, syncPeriod: '30s', minSyncPeriod: '0s' },
  };
}

const COREDNS_PORT = 1053;

/** Cluster DNS as a cluster runs it: CoreDNS in kube-system behind the `kube-dns` Service. */
export function clusterDnsManifests(): object[] {
  const meta = { name: 'coredns', namespace: 'kube-system' };
  const labels = { 'k8s-app': 'kube-dns' };
  // An unprivileged port: CoreDNS runs as nobody with no capabilities; the Service maps 53.
  const corefile = `.:${COREDNS_PORT} {
    errors
    health :8080
    ready :8181
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
    loop
}
`;
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'shardwarden:coredns' },
      rules: [
        { apiGroups: [''], resources: ['services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'shardwarden:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'shardwarden:coredns' },
      subjects: [{ kind: 'ServiceAccount', ...meta }],
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta, data: { Corefile: corefile } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { ...meta, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'coredns',
            // Upstream is the node's resolver, not CoreDNS itself.
            dnsPolicy: 'Default',
            securityContext: { runAsUser: 65534, runAsGroup: 65534, runAsNonRoot: true },
            containers: [
              {
                name: 'coredns',
                image: NODE_IMAGES.coredns,
                imagePullPolicy: 'IfNotPresent',
                args: ['-conf', '/etc/coredns/Corefile'],
                ports: [
                  { name: 'dns', containerPort: COREDNS_PORT, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: COREDNS_PORT, protocol: 'TCP' },
                ],
                securityContext: {
                  readOnlyRootFilesystem: true,
                  allowPrivilegeEscalation: false,
                  capabilities: { drop: ['ALL'] },
                },
                livenessProbe: { httpGet: { path: '/health', port: 8080 }, periodSeconds: 5 },
                readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 1 },
                volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: 'coredns' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system', labels },
      spec: {
        clusterIP: CLUSTER_DNS_IP,
        selector: labels,
        ports: [
          { name: 'dns', port: 53, targetPort: COREDNS_PORT, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, targetPort: COREDNS_PORT, protocol: 'TCP' },
        ],
      },
    },
  ];
}

/** An iptables-restore script that removes what kube-proxy, the kubelet and CNI added since `before`. */
export function iptablesCleanupScript(before: string, after: string): string {
  const parse = (save: string) => {
    const tables = new Map<string, { chains: Set<string>; rules: string[] }>();
    let current: { chains: Set<string>; rules: string[] } | undefined;
    for (const line of save.split('\n')) {
      if (line.startsWith('*')) tables.set(line.slice(1), (current = { chains: new Set(), rules: [] }));
      else if (line.startsWith(':') && current) current.chains.add(line.slice(1).split(' ')[0]!);
      else if (line.startsWith('-A ') && current) current.rules.push(line);
    }
    return tables;
  };
  const old = parse(before);
  const out: string[] = [];
  for (const [table, now] of parse(after)) {
    const was = old.get(table) ?? { chains: new Set<string>(), rules: [] };
    const ours = [...now.chains].filter((c) => !was.chains.has(c) && /^(KUBE-|CNI-)/.test(c));
    if (ours.length === 0) continue;
    const oldRules = new Set(was.rules);
    const jumpsToOurs = (rule: string) =>
      ours.some((c) => rule.endsWith(` -j ${c}`) || rule.includes(` -j ${c} `));
    const chainOf = (rule: string) => rule.split(' ')[1]!;
    out.push(`*${table}`);
    for (const rule of now.rules) {
      if (!oldRules.has(rule) && !ours.includes(chainOf(rule)) && jumpsToOurs(rule))
        out.push(`-D${rule.slice(2)}`);
    }
    for (const chain of ours) out.push(`-F ${chain}`);
    for (const chain of ours) out.push(`-X ${chain}`);
    out.push('COMMIT');
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

// ---- host I/O --------------------------------------------------------------------------------

function run(command: string, args: string[], input?: string): string {
  return execFileSync(command, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function tryRun(command: string, args: string[], input?: string): string | undefined {
  try {
    return run(command, args, input);
  } catch {
    return undefined;
  }
}

/** A /24 in 10.244.0.0/16 that no host route covers yet. */
function freePodSubnet(): string {
  const routes = tryRun('ip', ['-4', '-o', 'route', 'show']) ?? '';
  for (;;) {
    const third = 1 + (randomBytes(1)[0]! % 254);
    if (!routes.includes(`10.244.${third}.`)) return `10.244.${third}.0/24`;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function cgroupHierarchies(): string[] {
  if (existsSync(join(CGROUP_ROOT, 'cgroup.controllers'))) return [CGROUP_ROOT];
  return readdirSync(CGROUP_ROOT)
    .map((h) => join(CGROUP_ROOT, h))
    .filter((h) => existsSync(join(h, 'cgroup.procs')));
}

/** Every folder under `root`, deepest first. */
function foldersDeepestFirst(root: string): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
    }
    out.push(dir);
  };
  walk(root);
  return out;
}

function makeCgroupRoot(cgroupRoot: string): void {
  for (const h of cgroupHierarchies()) {
    const path = join(h, cgroupRoot);
    mkdirSync(path, { recursive: true });
    // A new v1 cpuset cgroup starts with no CPUs and no memory nodes; give it the parent's.
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(path, file))) writeFileSync(join(path, file), readFileSync(join(h, file)));
    }
  }
}

function killProcesses(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function processesInCgroups(cgroupRoot: string): number[] {
  const pids = new Set<number>();
  for (const h of cgroupHierarchies()) {
    for (const dir of foldersDeepestFirst(join(h, cgroupRoot))) {
      try {
        for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n'))
          if (p) pids.add(Number(p));
      } catch {
        /* removed meanwhile */
      }
    }
  }
  return [...pids];
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mp): mp is string => !!mp && (mp === dir || mp.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

function iptablesSave(family: IpTablesFamily): string {
  return tryRun(`${family}-save`, []) ?? '';
}

/**
 * Removes every trace of a node from the host, whether its processes stopped cleanly or were
 * killed. Synchronous, so it also runs from a process 'exit' hook. Returns what failed.
 */
function sweep(t: NodeTraces): string[] {
  const problems: string[] = [];
  const step = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  step('kill node processes', () => {
    for (let i = 0; i < 20; i++) {
      const pids = [...processesMentioning(t.dir), ...processesInCgroups(t.cgroupRoot)];
      if (pids.length === 0) return;
      killProcesses(pids);
      sleepSync(100);
    }
  });
  step('unmount', () => {
    for (const mp of mountsUnder(t.dir)) if (tryRun('umount', [mp]) === undefined) run('umount', ['-l', mp]);
  });
  step('bridge', () => {
    if (tryRun('ip', ['link', 'show', t.bridge]) !== undefined) run('ip', ['link', 'delete', t.bridge]);
  });
  for (const family of IPTABLES_FAMILIES) {
    step(family, () => {
      const script = iptablesCleanupScript(t.iptablesBefore[family], iptablesSave(family));
      if (script) run(`${family}-restore`, ['--noflush'], script);
    });
  }
  step('cgroups', () => {
    for (const h of cgroupHierarchies())
      for (const dir of foldersDeepestFirst(join(h, t.cgroupRoot))) rmdirSync(dir);
  });
  step('container log links', () => {
    const links = '/var/log/containers';
    if (!existsSync(links)) return;
    for (const entry of readdirSync(links)) {
      const path = join(links, entry);
      if (readlinkSync(path).startsWith(`${t.dir}/`)) unlinkSync(path);
    }
  });
  step('shim sockets', () => {
    // A killed shim leaves its socket; one no process listens on any more is stale.
    const [socketDir] = SHIM_SOCKET_DIRS;
    if (!existsSync(socketDir!)) return;
    const bound = readFileSync('/proc/net/unix', 'utf8');
    for (const f of readdirSync(socketDir!))
      if (!bound.includes(join(socketDir!, f))) unlinkSync(join(socketDir!, f));
    for (const d of SHIM_SOCKET_DIRS) if (existsSync(d) && !t.shimDirsExisted.includes(d)) rmdirSync(d);
  });
  step('ip_forward', () => writeFileSync('/proc/sys/net/ipv4/ip_forward', t.ipForwardBefore));
  step('folder', () => {
    if (process.env.SHARDWARDEN_KEEP_TMP !== '1') rmSync(t.dir, { recursive: true, force: true });
  });
  return problems;
}

/** Sweeps what a killed run left (its traces file), so every start begins from a clean host. */
function sweepPreviousRun(): void {
  if (!existsSync(TRACES_FILE)) return;
  const problems = sweep(JSON.parse(readFileSync(TRACES_FILE, 'utf8')) as NodeTraces);
  if (problems.length) throw new Error(`could not clean up a previous real node:\n${problems.join('\n')}`);
  unlinkSync(TRACES_FILE);
}

/** Holds the machine-wide real-node lock until the returned function is called (or we die). */
async function acquireLock(timeoutMs: number): Promise<() => void> {
  // flock holds the lock while `cat` waits on our stdin; it closes when we exit, however we exit.
  const holder: ChildProcess = spawn(
    'flock',
    ['--exclusive', LOCK_FILE, 'sh', '-c', 'echo locked; exec cat'],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  let output = '';
  holder.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  const holderExited = () => holder.exitCode !== null || holder.signalCode !== null;
  await waitUntil(
    `the real-node lock ${LOCK_FILE} (another real node runs on this machine)`,
    async () => {
      if (holderExited()) throw new Error(`flock exited with ${holder.exitCode}`);
      return output.includes('locked');
    },
    { timeoutMs, intervalMs: 250 },
  ).catch((err) => {
    holder.kill('SIGKILL');
    throw err;
  });
  holder.unref();
  return () => holder.stdin?.end();
}

interface Tools {
  containerd: string;
  ctr: string;
  busybox: string;
}

function ensureTools(): Tools {
  ensureDebianPackage('runc', 'runc');
  ensureDebianPackage(join(CNI_BIN_DIR, 'bridge'), 'containernetworking-plugins');
  ensureDebianPackage('iptables-restore', 'iptables');
  ensureDebianPackage('conntrack', 'conntrack');
  return {
    containerd: ensureDebianPackage('containerd', 'containerd'),
    ctr: ensureDebianPackage('ctr', 'containerd'),
    busybox: ensureDebianPackage('/bin/busybox', 'busybox-static'),
  };
}

/** The CoreDNS image: its static binary alone. */
function buildCorednsImage(dir: string): string {
  const rootfs = join(dir, 'coredns-rootfs');
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  copyFileSync(kubeBinary('coredns'), join(rootfs, 'coredns'));
  chmodSync(join(rootfs, 'coredns'), 0o755);
  return writeOciArchive(
    rootfs,
    [{ name: NODE_IMAGES.coredns, entrypoint: ['/coredns'] }],
    join(dir, 'coredns'),
    join(dir, 'coredns.tar'),
  );
}

/** Writes the busybox and pause image archive into `dir`. */
function buildNodeImages(busybox: string, dir: string): string {
  const rootfs = busyboxRootfs(busybox, join(dir, 'busybox-rootfs'));
  return writeOciArchive(
    rootfs,
    [
      { name: NODE_IMAGES.busybox, cmd: ['sh'] },
      { name: NODE_IMAGES.pause, entrypoint: ['/bin/sleep', '2147483647'] },
    ],
    dir,
    join(dir, 'node-images.tar'),
  );
}

export interface RealNodeOptions {
  /**
   * Run CoreDNS so `<service>.<namespace>.svc.cluster.local` resolves in pods (default true).
   * Needs a control plane started with `podAccess`, since CoreDNS watches the apiserver.
   */
  clusterDns?: boolean;
  /** How long to wait for another real node on this machine to stop (default 20 min). */
  lockTimeoutMs?: number;
  /**
   * Called once the machine-wide lock is held and a killed run's traces are swept, before this
   * node changes the host: the host as this node found it, with no other node on it.
   */
  onLocked?: () => void;
  /**
   * Stop the node and exit on SIGINT/SIGTERM (default true). False for a program whose own scope
   * stops everything in order on a signal (the demo's runScope): exiting from here would cut
   * that short. The node's traces are swept at exit either way.
   */
  handleSignals?: boolean;
}

/**
 * Starts a real node for `cp`, which must run controllers and the scheduler. Resolves when the
 * Node is Ready and kube-proxy is healthy.
 */
export async function startRealNode(cp: ControlPlane, options: RealNodeOptions = {}): Promise<RealNode> {
  const unavailable = realNodeUnavailable();
  if (unavailable) throw new Error(`cannot start a real node: ${unavailable}`);
  const clusterDns = options.clusterDns ?? true;
  if (clusterDns && !cp.podAddress) {
    throw new Error(
      'clusterDns: start the control plane with { podAccess: true } so CoreDNS can reach the apiserver',
    );
  }
  const tools = ensureTools();
  const release = await acquireLock(options.lockTimeoutMs ?? 20 * 60_000);
  const procs: ManagedProcess[] = [];
  let traces: NodeTraces | undefined;
  const onExit = () => traces && sweep(traces);
  // Sweep, then exit as the signal would have; exit (not re-raising) runs the other 'exit'
  // hooks, so the control plane's processes are stopped too.
  const onSignal = (signal: NodeJS.Signals) => {
    void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  let stopped = false;
  let layout: NodeLayout | undefined;
  const stop = async (stopOptions: StopOptions = {}) => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const problems: string[] = [];
    try {
      await stopGracefully(procs, layout, traces !== undefined);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (traces) problems.push(...sweep(traces));
    if (layout) {
      tryRun(kubeBinary('kubectl'), [
        '--kubeconfig',
        cp.kubeconfigPath,
        'delete',
        'node',
        layout.name,
        '--wait=false',
      ]);
    }
    // Only our own traces: a previous run's that could not be swept stay for the next try.
    if (traces && problems.length === 0 && existsSync(TRACES_FILE)) unlinkSync(TRACES_FILE);
    try {
      stopOptions.beforeRelease?.();
    } finally {
      release();
    }
    if (problems.length) throw new Error(`the real node left traces:\n${problems.join('\n')}`);
  };

  try {
    sweepPreviousRun();
    options.onLocked?.();
    const id = randomBytes(4).toString('hex');
    // sweep() removes it (and honours SHARDWARDEN_KEEP_TMP), whatever stopped the node.
    const dir = makeTempDir('node').path;
    const nodeIp = hostAddress()!;
    layout = {
      name: `shardwarden-node-${id}`,
      dir,
      nodeIp,
      podSubnet: freePodSubnet(),
      bridge: `swbr${id}`,
      cgroupRoot: `/shardwarden-node-${id}`,
      caFile: join(cp.dir, 'ca.crt'),
      containerdSocket: join(dir, 'containerd.sock'),
      kubeletPort: await freePort(),
      kubeletHealthzPort: await freePort(),
      proxyHealthzPort: await freePort(),
      proxyMetricsPort: await freePort(),
      kubeletKubeconfig: join(dir, 'kubelet.kubeconfig'),
      proxyKubeconfig: join(dir, 'kube-proxy.kubeconfig'),
    };
    const ipForwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    traces = {
      dir,
      bridge: layout.bridge,
      podSubnet: layout.podSubnet,
      cgroupRoot: layout.cgroupRoot,
      iptablesBefore: { iptables: iptablesSave('iptables'), ip6tables: iptablesSave('ip6tables') },
      ipForwardBefore,
      shimDirsExisted: SHIM_SOCKET_DIRS.filter((d) => existsSync(d)),
    };
    writeFileSync(TRACES_FILE, JSON.stringify(traces));
    process.once('exit', onExit);
    if (options.handleSignals ?? true) {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    }

    writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
    makeCgroupRoot(layout.cgroupRoot);
    writeNodeFiles(cp, layout);
    const l: NodeLayout = layout;
    // The bridge with its gateway address before any pod: host services can bind to it before
    // the first pod starts (the CNI bridge plugin takes the existing bridge and address).
    run('ip', ['link', 'add', 'name', l.bridge, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${podGateway(l.podSubnet)}/24`, 'dev', l.bridge]);
    run('ip', ['link', 'set', l.bridge, 'up']);

    const containerd = startProcess(
      'containerd',
      tools.containerd,
      ['--config', join(dir, 'containerd.toml')],
      join(dir, 'containerd.log'),
    );
    procs.push(containerd);
    const ctr = (args: string[]) =>
      run(tools.ctr, ['--address', l.containerdSocket, '--namespace', 'k8s.io', ...args]);
    await waitUntil(
      'containerd answers',
      async () => tryRun(tools.ctr, ['--address', l.containerdSocket, 'version']) !== undefined,
      {
        process: containerd,
        timeoutMs: 60_000,
        intervalMs: 250,
      },
    );
    ctr(['images', 'import', buildNodeImages(tools.busybox, join(dir, 'images'))]);
    if (clusterDns) ctr(['images', 'import', buildCorednsImage(join(dir, 'images'))]);

    const kubelet = startProcess(
      'kubelet',
      kubeBinary('kubelet'),
      [
        '--config',
        join(dir, 'kubelet.yaml'),
        '--kubeconfig',
        l.kubeletKubeconfig,
        '--root-dir',
        join(dir, 'kubelet'),
        '--hostname-override',
        l.name,
        '--node-ip',
        l.nodeIp,
        '-v',
        '1',
      ],
      join(dir, 'kubelet.log'),
    );
    procs.push(kubelet);
    await waitUntil(
      `node ${l.name} Ready`,
      async () =>
        (tryRun(kubeBinary('kubectl'), [
          '--kubeconfig',
          cp.kubeconfigPath,
          'get',
          'node',
          l.name,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ]) ?? '') === 'True',
      { process: kubelet, timeoutMs: 180_000, intervalMs: 500 },
    );

    const proxy = startProcess(
      'kube-proxy',
      kubeBinary('kube-proxy'),
      ['--config', join(dir, 'kube-proxy.yaml'), '-v', '1'],
      join(dir, 'kube-proxy.log'),
    );
    procs.push(proxy);
    await waitUntil('kube-proxy /healthz', () => httpOk(`http://127.0.0.1:${l.proxyHealthzPort}/healthz`), {
      process: proxy,
      timeoutMs: 90_000,
      intervalMs: 500,
    });

    if (clusterDns) await deployClusterDns(cp);

    return {
      name: l.name,
      dir,
      nodeIp: l.nodeIp,
      podSubnet: l.podSubnet,
      gatewayIp: podGateway(l.podSubnet),
      bridge: l.bridge,
      containerdSocket: l.containerdSocket,
      importImage: (archive) => void ctr(['images', 'import', archive]),
      crictl: (args) => run(kubeBinary('crictl'), crictlArgs(l, args)),
      stop,
    };
  } catch (err) {
    await stop().catch((cleanup: Error) => console.error(cleanup.message));
    throw err;
  }
}

async function deployClusterDns(cp: ControlPlane): Promise<void> {
  cp.kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: clusterDnsManifests() }),
  );
  await waitUntil(
    'CoreDNS available',
    async () =>
      cp.kubectl([
        '-n',
        'kube-system',
        'get',
        'deployment',
        'coredns',
        '-o',
        'jsonpath={.status.availableReplicas}',
      ]) === '1',
    { timeoutMs: 180_000, intervalMs: 500 },
  );
}

function crictlArgs(l: NodeLayout, args: string[]): string[] {
  const endpoint = `unix://${l.containerdSocket}`;
  return ['--runtime-endpoint', endpoint, '--image-endpoint', endpoint, '--timeout', '60s', ...args];
}

function writeNodeFiles(cp: ControlPlane, l: NodeLayout): void {
  const caData = readFileSync(l.caFile).toString('base64');
  const pki = join(l.dir, 'pki');
  mkdirSync(pki);
  const kubeletCert = issueCertificate(cp.dir, pki, 'kubelet', {
    subject: `/O=system:nodes/CN=system:node:${l.name}`,
  });
  // system:kube-proxy is bound to the node-proxier ClusterRole by the apiserver's bootstrap policy.
  const proxyCert = issueCertificate(cp.dir, pki, 'kube-proxy', { subject: '/CN=system:kube-proxy' });
  writeFileSync(l.kubeletKubeconfig, kubeconfigYaml(cp.url, caData, kubeletCert), { mode: 0o600 });
  writeFileSync(l.proxyKubeconfig, kubeconfigYaml(cp.url, caData, proxyCert), { mode: 0o600 });
  writeFileSync(join(l.dir, 'containerd.toml'), containerdConfig(l));
  mkdirSync(join(l.dir, 'cni', 'net.d'), { recursive: true });
  writeFileSync(join(l.dir, 'cni', 'net.d', `10-${l.name}.conflist`), JSON.stringify(cniConfig(l), null, 2));
  writeFileSync(join(l.dir, 'kubelet.yaml'), JSON.stringify(kubeletConfig(l), null, 2));
  writeFileSync(join(l.dir, 'kube-proxy.yaml'), JSON.stringify(kubeProxyConfig(l), null, 2));
}

/**
 * Stops the node's processes in the order that lets each clean up after itself: kube-proxy and
 * the kubelet first (so nothing restarts pods), then every pod sandbox through the CRI (which
 * runs CNI DEL: veth, IP, masquerade rules, network namespace), then containerd.
 */
async function stopGracefully(
  procs: ManagedProcess[],
  l: NodeLayout | undefined,
  started: boolean,
): Promise<void> {
  const byName = (name: string) => procs.find((p) => p.name === name);
  await byName('kube-proxy')?.stop();
  await byName('kubelet')?.stop();
  const containerd = byName('containerd');
  let problem: string | undefined;
  if (l && started && containerd && !containerd.exited()) {
    try {
      run(kubeBinary('crictl'), crictlArgs(l, ['rmp', '--all', '--force']));
    } catch (err) {
      problem = `crictl rmp: ${String((err as { stderr?: string }).stderr ?? (err as Error).message)}`;
    }
  }
  for (const p of [...procs].reverse()) await p.stop();
  if (problem) throw new Error(problem);
}
