import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { join } from 'node:path';
import { createLogger } from '../../bot/observability/logger.js';
import { LeaseElector } from '../../operator/leader-election/lease-elector.js';
import { startTcpProxy, waitUntil, type ManagedProcess } from '../../testenv/index.js';
import { loggedPort, startShardwarden } from '../support/built-entrypoint.js';
import { applyYaml, exampleBot, readBot, secret, startHarness, type Harness } from './harness.js';

const LEASE_DURATION_MS = 4_000;

describe('leader election between two operator processes', () => {
  let h: Harness;
  const procs = new Map<string, ManagedProcess>();
  const ports = new Map<string, number>();

  const startOperator = async (identity: string) => {
    const proc = startShardwarden(
      identity,
      [
        'operator',
        `--identity=${identity}`,
        '--lease-namespace=default',
        '--lease-duration=4s',
        '--renew-deadline=3s',
        '--retry-period=500ms',
        '--http-port=0',
        '--http-host=127.0.0.1',
        `--discord-api-url=${h.sim.apiUrl}`,
      ],
      { KUBECONFIG: h.cp.kubeconfigPath },
      join(h.cp.dir, `operator-${identity}.log`),
    );
    procs.set(identity, proc);
    ports.set(identity, await loggedPort(proc));
  };
  const lease = async () =>
    (
      await h.kc
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: 'shardwarden-operator', namespace: 'default' })
    ).spec;
  const holder = async () => (await lease())?.holderIdentity ?? '';
  const msOf = (t: Date | string | undefined) => (t === undefined ? NaN : new Date(t).getTime());
  const reconciles = async (identity: string) => {
    const text = await (await fetch(`http://127.0.0.1:${ports.get(identity)}/metrics`)).text();
    return [...text.matchAll(/^shardwarden_operator_reconcile_total\{result="\w+"\} (\d+)/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  };

  beforeAll(async () => {
    h = await startHarness({ simulator: { guilds: 10, tokens: ['t'] } });
    applyYaml(h.cp, [
      secret('default', 'le-discord', { token: 't' }),
      secret('default', 'le-redis', { url: 'redis://x' }),
    ]);
  }, 120_000);
  afterAll(async () => {
    for (const p of procs.values()) await p.stop();
    await h?.stop();
  });

  test('only the leader reconciles; killing it hands over within the lease duration; SIGTERM releases at once', async () => {
    await startOperator('op-a');
    await startOperator('op-b');
    await waitUntil('a leader', async () => ['op-a', 'op-b'].includes(await holder().catch(() => '')), {
      timeoutMs: 20_000,
    });
    const leader = await holder();
    const standby = leader === 'op-a' ? 'op-b' : 'op-a';

    applyYaml(h.cp, [
      exampleBot('default', 'le', {
        tokenSecretRef: { name: 'le-discord' },
        redis: { urlSecretRef: { name: 'le-redis' } },
      }),
    ]);
    await waitUntil(
      'bot reconciled',
      async () => (await readBot(h.kc, 'default', 'le')).status?.shards === 1,
    );
    // The status is written inside a reconcile; the counter moves when the reconcile returns.
    await waitUntil('the leader counted its reconcile', async () => (await reconciles(leader)) > 0);
    expect(await reconciles(standby)).toBe(0);
    // One writer: every managed field of the StatefulSet belongs to one manager.
    const managers = JSON.parse(
      h.cp.kubectl(['get', 'statefulset', 'le-gateway', '-o', 'json', '--show-managed-fields']),
    ).metadata.managedFields.map((m: { manager: string }) => m.manager);
    expect(new Set(managers.filter((m: string) => m !== 'kube-controller-manager'))).toEqual(
      new Set(['shardwarden-operator']),
    );

    // SIGKILL: no release; the standby must wait out the lease. It counts the lease from the
    // last renewal it saw, so it must take over no sooner than a lease duration after the dead
    // leader's last renewTime. (Not "a lease duration after the kill": on a loaded machine the
    // leader's last renewal may come well before the kill.)
    let lastRenew = msOf((await lease())?.renewTime);
    const killedAt = Date.now();
    procs.get(leader)!.child.kill('SIGKILL');
    await waitUntil(
      'standby takes over',
      async () => {
        const spec = await lease();
        if (spec?.holderIdentity === leader) lastRenew = msOf(spec.renewTime);
        return spec?.holderIdentity === standby;
      },
      { timeoutMs: LEASE_DURATION_MS * 3, intervalMs: 100 },
    );
    const seenAt = Date.now();
    const handover = seenAt - killedAt;
    // The leader stamps renewTime before its write lands; the standby sees that write, waits a
    // lease duration from then, and only then writes: so it shows up here no sooner than that.
    // (One clock: this machine's, through the operator processes.)
    expect(seenAt - lastRenew).toBeGreaterThanOrEqual(LEASE_DURATION_MS);
    h.cp.kubectl(['patch', 'dbot', 'le', '--type=merge', '-p', '{"spec":{"worker":{"minReplicas":2}}}']);
    await waitUntil(
      'new leader reconciles',
      async () => h.cp.kubectl(['get', 'deployment', 'le-worker', '-o', 'jsonpath={.spec.replicas}']) === '2',
      { timeoutMs: 20_000 },
    );
    await waitUntil('the new leader counted its reconciles', async () => (await reconciles(standby)) > 0);

    // SIGTERM: the leader releases the lease, and a fresh standby takes it well before expiry.
    await startOperator('op-c');
    expect(await holder()).toBe(standby);
    const termAt = Date.now();
    await procs.get(standby)!.stop();
    // Released on the way out: once the process has exited, the lease names nobody (or already
    // op-c). Without the release it would still name the dead leader until it expired.
    expect(['', 'op-c']).toContain(await holder());
    await waitUntil('op-c takes over', async () => (await holder()) === 'op-c', {
      timeoutMs: LEASE_DURATION_MS * 3,
      intervalMs: 100,
    });
    console.log(`leader handover: ${handover} ms after SIGKILL, ${Date.now() - termAt} ms after SIGTERM`);
  }, 120_000);

  test('a leader whose apiserver connection stalls gives up at its renew deadline, before another can lead', async () => {
    const apiserver = new URL(h.cp.url);
    const proxy = await startTcpProxy(apiserver.hostname, Number(apiserver.port));
    const viaProxy = new KubeConfig();
    viaProxy.loadFromOptions({
      clusters: h.kc.getClusters().map((c) => ({ ...c, server: `https://${proxy.address}` })),
      users: h.kc.getUsers(),
      contexts: h.kc.getContexts(),
      currentContext: h.kc.getCurrentContext(),
    });
    const options = {
      name: 'stalled-leader',
      namespace: 'default',
      leaseDurationMs: LEASE_DURATION_MS,
      renewDeadlineMs: 3_000,
      retryPeriodMs: 500,
    };
    const log = createLogger('elector-test', 'silent');
    const a = new LeaseElector(viaProxy, { ...options, identity: 'a' }, log);
    const b = new LeaseElector(h.kc, { ...options, identity: 'b' }, log);
    const at: { aStopped?: number; bStarted?: number } = {};
    let bSawA = false;
    a.on('stopped-leading', () => (at.aStopped = Date.now()));
    b.on('started-leading', () => (at.bStarted = Date.now()));
    b.on('new-leader', (identity) => (bSawA ||= identity === 'a'));
    try {
      a.start();
      await waitUntil('a leads', async () => a.isLeader);
      b.start();
      await waitUntil('b stands by behind a', async () => bSawA);
      // From now on a's requests (a renewal in flight, or the next) get no answer at all.
      proxy.stall();
      await waitUntil('b leads', async () => b.isLeader, { timeoutMs: 30_000, intervalMs: 50 });
      // a stopped at its renew deadline (3 s after its last renewal went out); b could only take
      // the lease a whole lease duration (4 s) after it last saw a renewal: never two leaders.
      expect(at.aStopped).toBeDefined();
      expect(at.aStopped!).toBeLessThanOrEqual(at.bStarted!);
      expect(a.isLeader).toBe(false);
      // b hands the lease back; a, reachable again, leads; then its connection stalls and it is
      // stopped: the release cannot get through, yet stop() returns (its requests are aborted).
      await b.stop();
      proxy.resume();
      await waitUntil('a leads again', async () => a.isLeader, { timeoutMs: 30_000 });
      proxy.stall();
      await a.stop();
      expect(a.isLeader).toBe(false);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await proxy.stop();
    }
  }, 60_000);
});
