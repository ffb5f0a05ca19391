// What a gateway pod tells Kubernetes and Prometheus: every metric the issue lists, per shard
// where it is per shard; /healthz failing while a cluster process's event loop is stuck.
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { milestoneLines } from '../../benchmarks/cold-start-timeline.js';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';
import { queuePrefix, type BatchedDispatch } from '../../bot/queues/queue-names.js';
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
let gw: GatewayProcess;

beforeAll(async () => {
  sim = await DiscordSimulator.start({
    seed: 5,
    guilds: 40,
    // A heartbeat interval short enough for the latency gauge to fill within the test, long
    // enough that the simulator's zombie check (no heartbeat for 1.5 intervals) survives a
    // loaded machine: at 1 s, a 0.5 s stall of either process ended a session and its shard
    // identified again (GUILD_CREATE counted twice).
    gateway: { maxConcurrency: 2, identifyWindowMs: 1000, heartbeatIntervalMs: 5_000 },
  });
  redis = await startRedis();
  gw = await startGateway(
    gatewayEnv(sim, redis.url, 0, {
      SHARDWARDEN_INTENTS: 'Guilds,GuildMessages,GuildMessageReactions',
      SHARDWARDEN_EVENTS: 'INTERACTION_CREATE,MESSAGE_CREATE,MESSAGE_REACTION_ADD',
    }),
  );
  await waitReady(gw);
});

afterAll(async () => {
  if (gw) {
    for (const pid of childPids(gw.proc.child.pid!)) process.kill(pid, 'SIGCONT');
    await gw.proc.stop();
  }
  await sim?.stop();
  await redis?.close();
});

/** The shard label of each sample of a metric, e.g. ['shard="0"', ...]. */
function series(text: string, name: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`))
    .map((l) => /shard="\d+"/.exec(l)?.[0] ?? l);
}

async function health(): Promise<{
  status: number;
  body: { ok: boolean; details: { stalledClusters: number[] } };
}> {
  const res = await fetch(`http://127.0.0.1:${gw.port}/healthz`);
  return { status: res.status, body: (await res.json()) as never };
}

test('/metrics, aggregated over both cluster processes, has every gateway figure', async () => {
  const guilds = [...sim.world.guilds.keys()];
  await sim.stream({ type: 'MESSAGE_CREATE', count: 300, make: (i, g) => message(i, g) });
  sim.injectInteraction({ guildId: guilds[0]!, userId: '5', command: 'ping' });
  let m = '';
  await waitUntil(
    'forwarded dispatches and a heartbeat latency for every shard',
    async () => {
      m = await gw.metrics();
      return (
        metricSum(m, 'shardwarden_gateway_dispatches_forwarded_total') === 301 &&
        series(m, 'shardwarden_gateway_heartbeat_latency_seconds').length === 4
      );
    },
    // Generous: two cluster processes enqueue 301 jobs and wait a heartbeat each; a CI run on
    // a machine at load 15 took over 30 s.
    { timeoutMs: 90_000, intervalMs: 250 },
  );
  const shards = ['shard="0"', 'shard="1"', 'shard="2"', 'shard="3"'];
  expect(series(m, 'shardwarden_gateway_shard_ready').sort()).toEqual(shards);
  expect(metricSum(m, 'shardwarden_gateway_shard_ready')).toBe(4);
  expect(series(m, 'shardwarden_gateway_heartbeat_latency_seconds').sort()).toEqual(shards);
  expect(metricSum(m, 'shardwarden_gateway_pod_shards_ready')).toBe(4);
  // Received by type: 300 MESSAGE_CREATE, 1 INTERACTION_CREATE, 40 GUILD_CREATE, 4 READY.
  expect(metricSum(m, 'shardwarden_gateway_dispatches_received_total', 'type="MESSAGE_CREATE"')).toBe(300);
  expect(metricSum(m, 'shardwarden_gateway_dispatches_received_total', 'type="GUILD_CREATE"')).toBe(40);
  expect(metricSum(m, 'shardwarden_gateway_dispatches_forwarded_total', 'type="INTERACTION_CREATE"')).toBe(1);
  expect(metricSum(m, 'shardwarden_gateway_dispatches_dropped_total', 'type="READY"')).toBe(4);
  // Every forwarded dispatch went through a batch; each batch's enqueue was timed.
  expect(metricSum(m, 'shardwarden_gateway_batch_size_sum')).toBe(301);
  const batches = metricSum(m, 'shardwarden_gateway_batch_size_count');
  expect(batches).toBeGreaterThanOrEqual(2); // two clusters, and the interaction came later
  expect(metricSum(m, 'shardwarden_gateway_enqueue_latency_seconds_count')).toBe(batches);
  // One identify per shard, each after a (measured) wait for its bucket; no resumes yet.
  expect(metricSum(m, 'shardwarden_gateway_identify_wait_seconds_count')).toBe(4);
  expect(metricSum(m, 'shardwarden_gateway_session_starts_total', 'kind="identify"')).toBe(4);
  expect(metricSum(m, 'shardwarden_gateway_session_starts_total', 'kind="resume"')).toBe(0);
  expect(metricSum(m, 'shardwarden_gateway_buffer_depth')).toBe(0);
  expect(metricSum(m, 'shardwarden_gateway_buffer_overflow_total')).toBe(0);
  // Each cluster process's series are its own (a respawned one restarts its counters alone).
  const byCluster = m.split('\n').filter((l) => l.startsWith('shardwarden_gateway_shard_ready{'));
  expect(byCluster.filter((l) => l.includes('cluster="0"'))).toHaveLength(2);
  expect(byCluster.filter((l) => l.includes('cluster="1"'))).toHaveLength(2);
}, 120_000);

test("the primary and each cluster process log their start's milestones in order, with the CPU used by then", async () => {
  const logged = () => milestoneLines(readFileSync(gw.proc.logFile, 'utf8'));
  // A cluster's last milestone can follow the /readyz that already answered.
  await waitUntil(
    'both clusters logged their shards READY',
    async () => logged().filter((l) => l.milestone === 'shards ready').length === 2,
  );
  const lines = logged();
  expect(lines.filter((l) => l.milestone === 'clusters forked')).toHaveLength(1);
  for (const cluster of [0, 1]) {
    const own = lines.filter((l) => l.cluster === cluster);
    expect(own.map((l) => l.milestone)).toEqual([
      'modules loaded',
      'launched',
      'redis connected',
      'first identify',
      'shards ready',
    ]);
    // Time and CPU only go forward, from the process's own start.
    for (const key of ['at', 'cpuMs'] as const)
      expect(own.map((l) => l[key])).toEqual(own.map((l) => l[key]).sort((x, y) => x - y));
    expect(own[0]!.processStartedAt).toBeLessThanOrEqual(own[0]!.at);
  }
});

test('/healthz fails while a cluster process is stuck, names it, and recovers when it runs again', async () => {
  await waitUntil('/healthz 200', async () => (await health()).status === 200, { timeoutMs: 30_000 });
  const [victim, other] = childPids(gw.proc.child.pid!);
  expect(other).toBeDefined();
  // SIGSTOP: from outside, indistinguishable from an event loop that never yields.
  process.kill(victim!, 'SIGSTOP');
  let stalled: number[] = [];
  try {
    await waitUntil(
      '/healthz 503',
      async () => {
        const h = await health();
        stalled = h.body.details.stalledClusters;
        return h.status === 503;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  } finally {
    process.kill(victim!, 'SIGCONT');
  }
  expect(stalled).toHaveLength(1);
  await waitUntil('/healthz 200 again', async () => (await health()).status === 200, { timeoutMs: 30_000 });
}, 60_000);

test('/readyz turns unready as soon as a cluster process dies, and ready again once its shards resume (nothing to replay)', async () => {
  await waitReady(gw);
  const readyz = async () => (await fetch(`http://127.0.0.1:${gw.port}/readyz`)).status;
  // Every shard's live session is in Redis (written just after READY) before the crash, or the
  // respawned process would have nothing, or a dead session, to resume: the test before this
  // one stopped a cluster process, whose shards then started new sessions while the old ones
  // were still stored for a moment.
  const conn = new Redis(redis.url);
  try {
    await waitUntil(
      "the 4 shards' live sessions stored",
      async () => {
        const keys = await conn.keys('*:session:*');
        const stored = await Promise.all(keys.map((k) => conn.get(k)));
        const live = stored.filter((raw) => {
          const id = raw ? (JSON.parse(raw) as { sessionId?: string }).sessionId : undefined;
          return id !== undefined && sim.gateway.sessions.get(id)?.connection !== undefined;
        });
        return live.length === 4;
      },
      { timeoutMs: 30_000 },
    );
  } finally {
    conn.disconnect();
  }
  // Counted from here: the shards of the cluster the test before stopped may have only just
  // reconnected (and identified) after it ran again.
  const identifies = sim.recorder.identifies.length;
  const resumes = sim.recorder.resumes.length;
  const [victim] = childPids(gw.proc.child.pid!);
  process.kill(victim!, 'SIGKILL');
  // Its shards are gone until the respawned process resumes them; the pod must say so meanwhile.
  await waitUntil('/readyz 503 after the crash', async () => (await readyz()) === 503, {
    timeoutMs: 30_000,
    intervalMs: 20,
  });
  expect(metricSum(await gw.metrics(), 'shardwarden_gateway_pod_shards_ready')).toBeLessThan(4);
  // A quiet moment: the RESUME replays nothing. (discord.js's RESUMED handler once crashed the
  // respawned cluster here, again on every respawn, because its copy of the session was empty.)
  await waitReady(gw);
  expect(metricSum(await gw.metrics(), 'shardwarden_gateway_pod_shards_ready')).toBe(4);
  expect(sim.recorder.resumes.length - resumes).toBe(2);
  expect(sim.recorder.identifies.length).toBe(identifies);
}, 60_000);

test('the same reaction added twice runs twice, keyed by the session and sequence it came in', async () => {
  const [guild] = [...sim.world.guilds.keys()];
  const reaction = (_i: number, g: string) => ({
    guild_id: g,
    channel_id: '1',
    message_id: '3',
    user_id: '2',
    emoji: { id: null, name: 'x' },
  });
  await sim.stream({ type: 'MESSAGE_REACTION_ADD', count: 2, guildIds: [guild!], make: reaction });
  const q = queues(redis.url);
  try {
    let reactions: BatchedDispatch[] = [];
    await waitUntil(
      'two reactions that run',
      async () => {
        const queued = (await queuedDispatches(q.events)).filter((d) => d.t === 'MESSAGE_REACTION_ADD');
        reactions = await runOnce(redis.url, queuePrefix(BOT_REF), queued);
        return reactions.length === 2;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    // The session each shard identified with (its resumes keep it).
    const sessionOf = (shardId: number) =>
      sim.recorder.identifies.filter((i) => i.shardId === shardId && !i.refused).at(-1)?.sessionId;
    for (const d of reactions) expect(d.key).toBe(`MESSAGE_REACTION_ADD-${sessionOf(d.shardId)}-${d.seq}`);
  } finally {
    await Promise.all([q.interactions.close(), q.events.close()]);
  }
}, 60_000);
