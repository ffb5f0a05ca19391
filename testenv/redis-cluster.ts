// A real Redis Cluster from the same redis-server as startRedis(): 3 masters with one replica
// each, wired by code (ADDSLOTSRANGE, MEET, REPLICATE) so the topology is known to the tests,
// and a failover helper that promotes a master's replica while a test runs. Password-protected,
// with an ACL user that the URL names, as a production cluster is: every client (and every copy
// BullMQ makes of one) must carry the credentials.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { issueCertificate, makeTestCa } from './control-plane.js';
import { freePort } from './ports.js';
import { redisServerBinary } from './redis.js';
import { startProcess, waitUntil, type ManagedProcess } from './processes.js';
import { makeTempDir } from './tempdir.js';

const SLOTS = 16_384;
/**
 * Short, so a killed master is replaced within seconds; long enough that a loaded machine does
 * not fail nodes over by itself. Above the ~1.6 s ioredis's Cluster waits by default, so the
 * failover tests show whether a client waits out a real one (redis-connection.ts).
 */
const NODE_TIMEOUT_MS = 5_000;

/** The name a TLS cluster's certificate holds, and its nodes announce. */
const TLS_HOST = 'localhost';

/** The ACL user the URL names. */
const USER = 'shardwarden';

export interface RedisClusterNode {
  readonly port: number;
  /** The node's cluster id (CLUSTER MYID). */
  readonly id: string;
  /** True while this process runs. */
  running(): boolean;
}

export interface RedisClusterServer {
  /**
   * `redis+cluster://shardwarden:<password>@127.0.0.1:<p1>,...` naming the three first masters,
   * the form a bot's Secret takes (the password holds characters a URL must percent-encode).
   */
  readonly url: string;
  /** The password of the `default` user and of the URL's user. */
  readonly password: string;
  /** With `tls`: the test CA (PEM) that signed the nodes' certificate. */
  readonly ca?: string;
  readonly nodes: readonly RedisClusterNode[];
  /** The node serving `key`'s slot as master now. */
  masterOf(key: string): Promise<RedisClusterNode>;
  /**
   * Promotes the replica of the master serving `key`. `graceful` (CLUSTER FAILOVER): the replica
   * catches up first, nothing acknowledged is lost. `kill`: the master is SIGKILLed and the
   * cluster promotes the replica by itself once the other masters agree it failed (after the node
   * timeout, then an election), what a crashed master costs (replication is
   * asynchronous). Resolves when every running node serves the slot from the new master.
   */
  failover(key: string, mode: 'graceful' | 'kill'): Promise<{ from: RedisClusterNode; to: RedisClusterNode }>;
  /**
   * Moves the empty slot of `key` to master `to` (the resharding steps of the cluster spec, with
   * no keys to MIGRATE), as an operator places a slot before a bot uses it. Resolves when every
   * running node serves the slot from `to`; refuses a slot that holds keys. Not atomic: nothing
   * may write the slot while it runs (a key written after the check leaves it half moved).
   */
  moveSlot(key: string, to: RedisClusterNode): Promise<void>;
  /** Starts a killed node again (it rejoins as a replica of its replacement). */
  restart(node: RedisClusterNode): Promise<void>;
  /** Stops every node and removes their folders. */
  close(): Promise<void>;
}

/** A TLS cluster's files: one certificate for every node, naming only `localhost`. */
interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
}

interface NodeState {
  password: string;
  tls?: TlsFiles;
  port: number;
  busPort: number;
  dir: string;
  id: string;
  proc?: ManagedProcess;
}

function client(node: NodeState): Redis {
  return new Redis({
    host: '127.0.0.1',
    port: node.port,
    password: node.password,
    ...(node.tls ? { tls: { ca: node.tls.ca, servername: TLS_HOST } } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
}

async function ask<T>(node: NodeState, run: (r: Redis) => Promise<T>): Promise<T> {
  const r = client(node);
  // A node that is down refuses the connection: `run` rejects with that error, which the
  // caller waits out; without a listener ioredis would also print it as unhandled.
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await run(r);
  } finally {
    r.disconnect();
  }
}

const clusterInfo = (node: NodeState) => ask(node, async (r) => String(await r.call('CLUSTER', 'INFO')));

/** `CLUSTER NODES` parsed: id, port, flags, master id, slot ranges. */
async function clusterNodes(node: NodeState) {
  const text = String(await ask(node, (r) => r.call('CLUSTER', 'NODES')));
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, master, , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(/:(\d+)@/.exec(address!)?.[1]),
        flags: flags!.split(','),
        master: master === '-' ? undefined : master,
        slots,
      };
    });
}

/** Whether a slot range of `CLUSTER NODES` (`5461-10922`, `7`; not `[7->-id]`, a migration) holds `slot`. */
function inRange(range: string, slot: number): boolean {
  if (range.startsWith('[')) return false;
  const [first, last = first] = range.split('-').map(Number);
  return first! <= slot && slot <= last!;
}

function startNode(binary: string, node: NodeState): ManagedProcess {
  return startProcess(
    `redis-cluster-${node.port}`,
    binary,
    [
      ...(node.tls ? tlsArguments(node.port, node.tls) : ['--port', String(node.port)]),
      // Set, not port + 10000: that would land in the NodePort and ephemeral ranges (ports.ts).
      '--cluster-port',
      String(node.busPort),
      '--bind',
      '127.0.0.1',
      '--dir',
      node.dir,
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      String(NODE_TIMEOUT_MS),
      '--save',
      '',
      '--appendonly',
      'no',
      '--requirepass',
      node.password,
      // Replicas (and a restarted master, as its replacement's replica) authenticate too.
      '--masterauth',
      node.password,
      // One argument per word: redis-server would take a single one as a quoted user name.
      '--user',
      USER,
      'on',
      `>${node.password}`,
      '~*',
      '&*',
      '+@all',
    ],
    join(node.dir, 'redis.log'),
  );
}

async function waitForPing(node: NodeState): Promise<void> {
  await waitUntil(
    `redis cluster node ${node.port} PING`,
    () => ask(node, async (r) => (await r.ping()) === 'PONG'),
    { process: node.proc, timeoutMs: 15_000 },
  );
}

/** Every running node says the cluster is ok and agrees on who serves every slot. */
async function waitForHealthyCluster(nodes: NodeState[], what: string): Promise<void> {
  await waitUntil(
    what,
    async () => {
      const running = nodes.filter((n) => n.proc && !n.proc.exited());
      for (const n of running) if (!/cluster_state:ok/.test(await clusterInfo(n))) return false;
      const views = await Promise.all(running.map((n) => clusterNodes(n)));
      const mastersSeen = views.map((v) =>
        v
          .filter((e) => e.flags.includes('master') && !e.flags.includes('fail') && e.slots.length > 0)
          .map((e) => e.id)
          .sort()
          .join(','),
      );
      return new Set(mastersSeen).size === 1;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

/**
 * TLS only, on `port`: clients, replication and the cluster bus. The cluster announces the host
 * name the certificate names, as a cluster behind certificates for names must.
 */
function tlsArguments(port: number, tls: TlsFiles): string[] {
  return [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    tls.certFile,
    '--tls-key-file',
    tls.keyFile,
    '--tls-ca-cert-file',
    tls.caFile,
    '--tls-auth-clients',
    'no',
    '--tls-replication',
    'yes',
    '--tls-cluster',
    'yes',
    '--cluster-announce-hostname',
    TLS_HOST,
    '--cluster-preferred-endpoint-type',
    'hostname',
  ];
}

function makeTlsFiles(dir: string): TlsFiles {
  makeTestCa(dir);
  // A name and no address: a client that connects by address fails the certificate check.
  const { certFile, keyFile } = issueCertificate(dir, dir, 'redis', {
    subject: `/CN=${TLS_HOST}`,
    altNames: `DNS:${TLS_HOST}`,
  });
  const caFile = join(dir, 'ca.crt');
  return { caFile, certFile, keyFile, ca: readFileSync(caFile, 'utf8') };
}

/**
 * 3 masters (slots split evenly) and a replica of each, on free loopback ports with their own
 * cluster bus ports, each in its own folder. Resolves once every node reports cluster_state:ok
 * and every replica is in sync with its master. `replicas: false`: the masters alone (a
 * benchmark's look at what a replica costs its master; no failover then).
 */
export async function startRedisCluster(
  options: { tls?: boolean; replicas?: boolean } = {},
): Promise<RedisClusterServer> {
  const binary = redisServerBinary();
  const dir = makeTempDir('redis-cluster');
  const password = `p@ss/${randomBytes(8).toString('hex')}`;
  let tls: TlsFiles | undefined;
  const nodes: NodeState[] = [];
  const close = async () => {
    await Promise.all(nodes.map((n) => n.proc?.stop()));
    dir.remove();
  };
  try {
    if (options.tls) tls = makeTlsFiles(dir.path);
    for (let i = 0; i < (options.replicas === false ? 3 : 6); i++) {
      const port = await freePort();
      const busPort = await freePort();
      const nodeDir = join(dir.path, String(port));
      mkdirSync(nodeDir);
      nodes.push({ password, ...(tls ? { tls } : {}), port, busPort, dir: nodeDir, id: '' });
    }
    for (const n of nodes) n.proc = startNode(binary, n);
    for (const n of nodes) {
      await waitForPing(n);
      n.id = String(await ask(n, (r) => r.call('CLUSTER', 'MYID')));
    }
    const masters = nodes.slice(0, 3);
    const replicas = nodes.slice(3);
    await Promise.all(
      masters.map((m, i) => {
        const first = Math.floor((SLOTS * i) / 3);
        const last = Math.floor((SLOTS * (i + 1)) / 3) - 1;
        return ask(m, (r) => r.call('CLUSTER', 'ADDSLOTSRANGE', first, last));
      }),
    );
    await ask(nodes[0]!, async (r) => {
      for (const n of nodes.slice(1)) await r.call('CLUSTER', 'MEET', '127.0.0.1', n.port, n.busPort);
    });
    await waitUntil(
      'every cluster node knows the others',
      async () =>
        (await Promise.all(nodes.map((n) => clusterNodes(n)))).every((v) => v.length === nodes.length),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    for (const [i, r] of replicas.entries())
      await ask(r, (c) => c.call('CLUSTER', 'REPLICATE', masters[i]!.id));
    await waitUntil(
      'every replica in sync with its master',
      async () => {
        for (const r of replicas) {
          const info = await ask(r, (c) => c.info('replication'));
          if (!/master_link_status:up/.test(info)) return false;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    await waitForHealthyCluster(nodes, 'cluster_state:ok on every node');
  } catch (err) {
    await close();
    throw err;
  }

  const view = (n: NodeState): RedisClusterNode => ({
    port: n.port,
    id: n.id,
    running: () => !!n.proc && !n.proc.exited(),
  });
  const state = (node: RedisClusterNode) => nodes.find((n) => n.port === node.port)!;
  const anyRunning = () => nodes.find((n) => n.proc && !n.proc.exited())!;
  const masterOf = async (key: string) => {
    const slot = Number(await ask(anyRunning(), (r) => r.call('CLUSTER', 'KEYSLOT', key)));
    const slots = (await ask(anyRunning(), (r) => r.call('CLUSTER', 'SLOTS'))) as [
      number,
      number,
      [string, number, string],
    ][];
    const range = slots.find(([first, last]) => first <= slot && slot <= last);
    if (!range) throw new Error(`no node serves slot ${slot}`);
    const port = Number(range[2][1]);
    return view(nodes.find((n) => n.port === port)!);
  };
  /**
   * A running replica of `master` with its replication link up. After an earlier failover, the
   * old master becomes the new one's replica only a moment later (and syncs after that).
   */
  const inSyncReplicaOf = async (master: NodeState): Promise<NodeState> => {
    let replica: NodeState | undefined;
    await waitUntil(
      `a replica of ${master.port} in sync`,
      async () => {
        const entry = (await clusterNodes(master)).find((e) => e.master === master.id);
        replica = nodes.find((n) => n.id === entry?.id && n.proc && !n.proc.exited());
        return !!replica && /master_link_status:up/.test(await ask(replica, (r) => r.info('replication')));
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    return replica!;
  };
  return {
    url: `${tls ? 'rediss' : 'redis'}+cluster://${USER}:${encodeURIComponent(password)}@${nodes
      .slice(0, 3)
      .map((n) => `${tls ? TLS_HOST : '127.0.0.1'}:${n.port}`)
      .join(',')}`,
    password,
    ...(tls ? { ca: tls.ca } : {}),
    nodes: nodes.map(view),
    masterOf,
    async failover(key, mode) {
      const from = await masterOf(key);
      const fromState = state(from);
      const toState = await inSyncReplicaOf(fromState);
      const to = view(toState);
      if (mode === 'kill') {
        fromState.proc!.child.kill('SIGKILL');
        await waitUntil(`master ${from.port} killed`, async () => fromState.proc!.exited(), {
          timeoutMs: 10_000,
        });
      } else {
        await ask(toState, (r) => r.call('CLUSTER', 'FAILOVER'));
      }
      await waitUntil(
        `replica ${to.port} serving the slot of ${key}`,
        async () => (await masterOf(key)).port === to.port,
        { timeoutMs: 120_000, intervalMs: 100 },
      );
      await waitForHealthyCluster(nodes, `cluster_state:ok after the failover of ${from.port}`);
      return { from, to };
    },
    async moveSlot(key, to) {
      const from = state(await masterOf(key));
      const target = state(to);
      if (from === target) return;
      const slot = Number(await ask(from, (r) => r.call('CLUSTER', 'KEYSLOT', key)));
      if (Number(await ask(from, (r) => r.call('CLUSTER', 'COUNTKEYSINSLOT', slot))) > 0)
        throw new Error(`slot ${slot} of ${key} holds keys: not moved`);
      await ask(target, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id));
      await ask(from, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id));
      // The importing node first: it takes the slot with a new config epoch, which the others
      // follow. Masters only: a replica refuses SETSLOT and learns it from its master.
      const masterIds = new Set(
        (await clusterNodes(from)).filter((e) => e.flags.includes('master')).map((e) => e.id),
      );
      const running = nodes.filter((n) => n.proc && !n.proc.exited());
      for (const n of [target, from, ...running.filter((n) => n !== target && n !== from)])
        if (masterIds.has(n.id)) await ask(n, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id));
      await waitUntil(
        `every node sees slot ${slot} served by ${target.port}`,
        async () => {
          for (const n of running) {
            const entry = (await clusterNodes(n)).find((e) => e.id === target.id);
            if (!entry?.slots.some((range) => inRange(range, slot))) return false;
          }
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      await waitForHealthyCluster(nodes, `cluster_state:ok after slot ${slot} moved`);
    },
    async restart(node) {
      const n = state(node);
      if (n.proc && !n.proc.exited()) return;
      n.proc = startNode(binary, n);
      await waitForPing(n);
      await waitForHealthyCluster(nodes, `cluster_state:ok after ${n.port} restarted`);
    },
    close,
  };
}
