// A gateway pod of one cluster (clustersPerPod: 1) runs it in its own process: no Kurasuta
// primary, no cluster process. What a forked pod does, this one does too, against the
// simulator and a real Redis: READY, forwarding exactly once, RESUME after a dropped socket,
// /metrics and the probes on the pod's port, logs naming bot and shard, and SIGTERM saving
// the sessions the next process resumes.
import { readFileSync } from 'node:fs';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';
import { queuePrefix } from '../../bot/queues/queue-names.js';
import {
  BOT_REF,
  childPids,
  gatewayEnv,
  message,
  metricSum,
  queuedDispatches,
  queues,
  runOnce,
  startGateway,
  waitReady,
  type GatewayProcess,
} from './harness.js';

let sim: DiscordSimulator;
let redis: RedisServer;
const running: GatewayProcess[] = [];

beforeAll(async () => {
  sim = await DiscordSimulator.start({
    seed: 31,
    guilds: 80,
    gateway: { maxConcurrency: 2, identifyWindowMs: 1000 },
  });
  redis = await startRedis({ persistent: true });
});
afterAll(async () => {
  for (const gw of running) await gw.proc.stop();
  await sim?.stop();
  await redis?.close();
});

async function gateway(): Promise<GatewayProcess> {
  const gw = await startGateway(gatewayEnv(sim, redis.url, 0, { SHARDWARDEN_CLUSTERS_PER_POD: '1' }));
  running.push(gw);
  return gw;
}

/** The queued events a worker would run (a replay is queued again and skipped by its claim). */
async function toRun(): Promise<number> {
  const q = queues(redis.url);
  try {
    return (await runOnce(redis.url, queuePrefix(BOT_REF), await queuedDispatches(q.events))).length;
  } finally {
    await Promise.all([q.interactions.close(), q.events.close()]);
  }
}

let sent = 0;
const stream = (n: number, ratePerSecond = 2_000) =>
  sim
    .stream({ type: 'MESSAGE_CREATE', count: n, ratePerSecond, make: (i, g) => message(sent + i, g) })
    .then(() => (sent += n));

async function expectForwarded(n: number): Promise<void> {
  await waitUntil(`${n} dispatches to run`, async () => (await toRun()) >= n, { timeoutMs: 60_000 });
  expect(await toRun()).toBe(n);
}

/** The gateway process's own command line (execve keeps its pid). */
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

describe('one gateway process, started once for these tests in order', () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await gateway();
    await waitReady(gw);
  }, 90_000);

  test('one process: its shards READY, identified through the Redis throttle, /metrics and the probes on its port', async () => {
    expect(childPids(gw.proc.child.pid!)).toEqual([]);
    // The semi-space cap as a node flag it restarted itself with (NODE_OPTIONS is not its own).
    expect(cmdline(gw.proc.child.pid!)).toContain('--max-semi-space-size=4');
    expect(sim.recorder.identifies.length).toBe(4);
    const m = await gw.metrics();
    expect(metricSum(m, 'shardwarden_gateway_pod_shards_ready')).toBe(4);
    // The cluster's series, one per shard, labelled as a forked pod's first cluster's are.
    const shardReady = m.split('\n').filter((l) => l.startsWith('shardwarden_gateway_shard_ready{'));
    expect(shardReady).toHaveLength(4);
    for (const line of shardReady) expect(line).toMatch(/cluster="0".* 1$/);
    expect(metricSum(m, 'shardwarden_gateway_session_starts_total', 'kind="identify"')).toBe(4);
    expect(metricSum(m, 'shardwarden_gateway_identify_wait_seconds_count', 'cluster="0"')).toBe(4);
    const health = await fetch(`http://127.0.0.1:${gw.port}/healthz`);
    expect(health.status).toBe(200);
    const logLines = readFileSync(gw.proc.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"shard ready"'))
      .map((l) => JSON.parse(l) as { bot: string; shard: number; cluster: number });
    expect(logLines.map((l) => [l.bot, l.cluster, l.shard]).sort()).toEqual(
      [0, 1, 2, 3].map((s) => ['earbot', 0, s]),
    );
  }, 90_000);

  test('forwards exactly once, and a dropped socket RESUMEs (no new identify) with nothing lost or doubled', async () => {
    const identifies = sim.recorder.identifies.length;
    await stream(500);
    await expectForwarded(500);
    const streaming = stream(1_000, 1_000);
    await waitUntil('streaming', async () => (await toRun()) > 600, { timeoutMs: 30_000 });
    expect(sim.gateway.fault(0, { kind: 'drop' })).toBe(1);
    await streaming;
    await waitUntil('shard 0 resumed', async () => sim.recorder.resumes.length === 1, { timeoutMs: 60_000 });
    await waitReady(gw);
    await expectForwarded(1_500);
    expect(sim.recorder.identifies.length).toBe(identifies);
    expect(metricSum(await gw.metrics(), 'shardwarden_gateway_session_starts_total', 'kind="resume"')).toBe(
      1,
    );
  }, 120_000);

  test('SIGTERM flushes and saves the sessions: the next process resumes every shard, nothing lost or doubled', async () => {
    const first = gw;
    const identifies = sim.recorder.identifies.length;
    const resumes = sim.recorder.resumes.length;
    const streaming = stream(2_000, 1_000);
    await waitUntil('streaming', async () => (await toRun()) > 1_800, { timeoutMs: 30_000 });
    first.proc.child.kill('SIGTERM');
    await waitUntil('the first process exited', async () => first.proc.exited(), { timeoutMs: 30_000 });
    expect(first.proc.child.exitCode).toBe(0);
    // The shutdown hook ran, and flushed everything (the 500 ms session timer alone would pass
    // the resume checks below too).
    const log = readFileSync(first.proc.logFile, 'utf8');
    expect(log).toContain('shutting down: freezing sessions, flushing the buffer');
    expect(log).toContain('"msg":"cluster stopped, its buffer flushed"');
    expect(log).not.toContain('cluster stopped before its buffer was flushed');
    const second = await gateway();
    await streaming;
    await waitReady(second);
    await expectForwarded(3_500);
    expect(sim.recorder.identifies.length).toBe(identifies);
    expect(sim.recorder.resumes.length - resumes).toBe(4);
    expect(sim.recorder.closes.filter((c) => c.code === 1000)).toEqual([]);
  }, 120_000);
});

test('shards not ready within the start timeout (Redis unreachable: no identify turn): the process exits with 1 and says why', async () => {
  const gw = await startGateway(
    gatewayEnv(sim, 'redis://127.0.0.1:1', 0, {
      SHARDWARDEN_CLUSTERS_PER_POD: '1',
      SHARDWARDEN_CLUSTER_START_TIMEOUT_MS: '1000',
    }),
  );
  running.push(gw);
  await waitUntil('the process exited', async () => gw.proc.exited(), { timeoutMs: 60_000 });
  expect(gw.proc.child.exitCode).toBe(1);
  expect(readFileSync(gw.proc.logFile, 'utf8')).toContain('the shards did not get ready in time');
}, 90_000);
