// The Ear as pods run it: the real entrypoint, Kurasuta clusters, discord.js v14, Redis, BullMQ,
// against the Discord simulator.
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

const running: GatewayProcess[] = [];
async function gateway(env: Record<string, string>) {
  const gw = await startGateway(env);
  running.push(gw);
  return gw;
}
afterEach(async () => {
  for (const gw of running.splice(0)) {
    gw.proc.child.kill('SIGKILL');
    for (const pid of childPids(gw.proc.child.pid!)) process.kill(pid, 'SIGKILL');
    await gw.proc.stop();
  }
});

/**
 * Waiting interaction jobs, and the queued events a worker would run: a replay is queued again
 * (a batch has no job id to refuse it by) and the worker's claim of its key skips it.
 */
async function waitingJobs(redisUrl: string): Promise<{ interactions: number; events: number }> {
  const q = queues(redisUrl);
  try {
    const [interactions, dispatches] = await Promise.all([
      q.interactions.getWaitingCount(),
      queuedDispatches(q.events),
    ]);
    return { interactions, events: (await runOnce(redisUrl, queuePrefix(BOT_REF), dispatches)).length };
  } finally {
    await Promise.all([q.interactions.close(), q.events.close()]);
  }
}

describe('gateway pods', () => {
  let sim: DiscordSimulator;
  let redis: RedisServer;
  beforeEach(async () => {
    sim = await DiscordSimulator.start({
      seed: 21,
      guilds: 200,
      guildSize: { members: 5 },
      gateway: { maxConcurrency: 2, identifyWindowMs: 1000 },
    });
    redis = await startRedis({ persistent: true });
  });
  afterEach(async () => {
    await sim.stop();
    await redis.close();
  });

  test('two pods over 8 shards with max_concurrency 2 start together: each shard identifies once, no bucket violation, all READY', async () => {
    const env = (pod: number) =>
      gatewayEnv(sim, redis.url, pod, { SHARDWARDEN_TOTAL_SHARDS: '8', SHARDWARDEN_SHARDS_PER_POD: '4' });
    const [a, b] = await Promise.all([gateway(env(0)), gateway(env(1))]);
    await Promise.all([waitReady(a!), waitReady(b!)]);
    const ok = sim.recorder.identifies.filter((i) => !i.refused);
    expect(ok.map((i) => i.shardId).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(ok.every((i) => i.shardCount === 8)).toBe(true);
    expect(sim.recorder.identifies.filter((i) => i.refused)).toEqual([]);
    expect(sim.recorder.violations).toEqual([]);
    // Per bucket, identifies are at least a window apart, across both pods.
    for (const bucket of [0, 1]) {
      const times = ok
        .filter((i) => i.bucket === bucket)
        .map((i) => i.at)
        .sort((x, y) => x - y);
      expect(times).toHaveLength(4);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(1000);
    }
    const m = await a!.metrics();
    expect(metricSum(m, 'shardwarden_gateway_pod_shards_ready')).toBe(4);
    expect(metricSum(m, 'shardwarden_gateway_session_starts_total', 'kind="identify"')).toBe(4);
  }, 90_000);

  test('10,000 dispatches of configured types are queued to run exactly once (interactions as jobs of their own); other types are dropped and counted', async () => {
    const gw = await gateway(gatewayEnv(sim, redis.url, 0));
    await waitReady(gw);
    const guilds = [...sim.world.guilds.keys()];
    await sim.stream({ type: 'MESSAGE_CREATE', count: 9_000, make: (i, g) => message(i, g) });
    for (let i = 0; i < 1_000; i++)
      sim.injectInteraction({ guildId: guilds[i % guilds.length]!, userId: '5', command: 'ping' });
    await sim.stream({
      type: 'TYPING_START',
      count: 500,
      make: (i, g) => ({ guild_id: g, user_id: String(i), channel_id: '1', timestamp: i }),
    });
    await waitUntil(
      '10,000 jobs',
      async () => {
        const j = await waitingJobs(redis.url);
        return j.events + j.interactions >= 10_000;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    await new Promise((r) => setTimeout(r, 500));
    const jobs = await waitingJobs(redis.url);
    expect(jobs.events).toBe(9_000);
    expect(jobs.interactions).toBe(1_000);
    const m = await gw.metrics();
    expect(metricSum(m, 'shardwarden_gateway_dispatches_forwarded_total')).toBe(10_000);
    // TYPING_START needs an intent the bot does not have, so Discord never sends it; GUILD_CREATE
    // and READY arrive but are not configured: dropped at the door and counted.
    expect(metricSum(m, 'shardwarden_gateway_dispatches_dropped_total', 'reason="not_configured"')).toBe(
      200 + 4,
    );
    expect(metricSum(m, 'shardwarden_gateway_dispatches_dropped_total', 'type="GUILD_CREATE"')).toBe(200);
    const q = queues(redis.url);
    const [job] = await q.interactions.getWaiting(0, 0);
    await Promise.all([q.interactions.close(), q.events.close()]);
    expect(job!.id).toMatch(/^INTERACTION_CREATE-\d+$/);
    expect(job!.data).toMatchObject({
      t: 'INTERACTION_CREATE',
      generation: 1,
      shardId: expect.any(Number),
      seq: expect.any(Number),
      receivedAt: expect.any(Number),
    });
  }, 90_000);

  test('a killed cluster process resumes (no new identify) and every dispatch sent meanwhile is forwarded exactly once', async () => {
    const gw = await gateway(gatewayEnv(sim, redis.url, 0));
    await waitReady(gw);
    const identifies = sim.recorder.identifies.length;
    let sent = 0;
    const stream = (n: number) =>
      sim
        .stream({
          type: 'MESSAGE_CREATE',
          count: n,
          ratePerSecond: 2_000,
          make: (i, g) => message(sent + i, g),
        })
        .then(() => (sent += n));
    await stream(1_000);
    const [victim] = childPids(gw.proc.child.pid!);
    process.kill(victim!, 'SIGKILL');
    await stream(1_000); // while the cluster is down and coming back
    await waitReady(gw);
    await stream(1_000);
    await waitUntil('3,000 jobs', async () => (await waitingJobs(redis.url)).events >= 3_000, {
      timeoutMs: 30_000,
    });
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await waitingJobs(redis.url)).events).toBe(3_000);
    expect(sim.recorder.identifies.length).toBe(identifies);
    expect(sim.recorder.resumes.length).toBe(2); // the killed cluster's two shards
  }, 90_000);

  test('a killed gateway process (the whole pod) resumes on restart and forwards everything exactly once', async () => {
    const env = gatewayEnv(sim, redis.url, 0);
    const first = await gateway(env);
    await waitReady(first);
    const identifies = sim.recorder.identifies.length;
    await sim.stream({
      type: 'MESSAGE_CREATE',
      count: 1_000,
      ratePerSecond: 5_000,
      make: (i, g) => message(i, g),
    });
    const pids = [first.proc.child.pid!, ...childPids(first.proc.child.pid!)];
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await first.proc.stop();
    await sim.stream({ type: 'MESSAGE_CREATE', count: 1_000, make: (i, g) => message(1_000 + i, g) });
    const second = await gateway(env);
    await waitReady(second);
    await waitUntil('2,000 jobs', async () => (await waitingJobs(redis.url)).events >= 2_000, {
      timeoutMs: 30_000,
    });
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await waitingJobs(redis.url)).events).toBe(2_000);
    expect(sim.recorder.identifies.length).toBe(identifies);
    expect(sim.recorder.resumes.length).toBe(4);
    expect(
      metricSum(await second.metrics(), 'shardwarden_gateway_session_starts_total', 'kind="resume"'),
    ).toBe(4);
  }, 90_000);

  test('SIGTERM flushes, keeps the sessions, and the next process resumes them', async () => {
    const env = gatewayEnv(sim, redis.url, 0);
    const first = await gateway(env);
    await waitReady(first);
    const streaming = sim.stream({
      type: 'MESSAGE_CREATE',
      count: 3_000,
      ratePerSecond: 1_000,
      make: (i, g) => message(i, g),
    });
    await new Promise((r) => setTimeout(r, 1_000));
    first.proc.child.kill('SIGTERM');
    await waitUntil('first gateway exited', async () => first.proc.exited(), { timeoutMs: 30_000 });
    expect(first.proc.child.exitCode).toBe(0);
    const second = await gateway(env);
    await streaming;
    await waitReady(second);
    await waitUntil('3,000 jobs', async () => (await waitingJobs(redis.url)).events >= 3_000, {
      timeoutMs: 30_000,
    });
    await new Promise((r) => setTimeout(r, 500));
    expect((await waitingJobs(redis.url)).events).toBe(3_000);
    expect(sim.recorder.resumes.length).toBe(4);
    expect(sim.recorder.closes.filter((c) => c.code === 1000)).toEqual([]);
  }, 90_000);

  test('a cluster that cannot get ready after a crash (Redis away) is started again; the primary stays up', async () => {
    // Short enough to time out while Redis is away, long enough for a busy machine to start a
    // cluster process (load discord.js, connect) once Redis is back.
    const gw = await gateway(gatewayEnv(sim, redis.url, 0, { SHARDWARDEN_CLUSTER_START_TIMEOUT_MS: '5000' }));
    await waitReady(gw);
    const [victim] = childPids(gw.proc.child.pid!);
    await redis.stop();
    process.kill(victim!, 'SIGKILL');
    // The respawned process cannot read its sessions, so it is not ready within 5 s per shard.
    await waitUntil(
      'a start that timed out',
      async () => readFileSync(gw.proc.logFile, 'utf8').includes('failed to start'),
      {
        process: gw.proc,
        timeoutMs: 30_000,
        intervalMs: 250,
      },
    );
    await new Promise((r) => setTimeout(r, 1_000));
    expect(gw.proc.child.exitCode).toBeNull();
    expect(gw.proc.child.signalCode).toBeNull();
    await redis.start();
    await waitReady(gw);
    expect(sim.recorder.identifies.filter((i) => !i.refused)).toHaveLength(4); // the shards resumed
  }, 120_000);

  test('Redis down for 10 s mid-stream: nothing lost within the buffer bound; beyond it, Discord replays what was refused once the shards resume', async () => {
    const gw = await gateway(gatewayEnv(sim, redis.url, 0, { SHARDWARDEN_BUFFER_LIMIT: '1500' }));
    await waitReady(gw);
    await sim.stream({ type: 'MESSAGE_CREATE', count: 500, make: (i, g) => message(i, g) });
    await waitUntil('500 jobs', async () => (await waitingJobs(redis.url)).events >= 500, {
      timeoutMs: 20_000,
    });
    await redis.stop();
    const outageStart = Date.now();
    // 1,000 during the outage fit in the buffer (1,500 per cluster process).
    await sim.stream({
      type: 'MESSAGE_CREATE',
      count: 1_000,
      ratePerSecond: 200,
      make: (i, g) => message(500 + i, g),
    });
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - outageStart))));
    await redis.start();
    await waitUntil('1,500 jobs', async () => (await waitingJobs(redis.url)).events >= 1_500, {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    expect((await waitingJobs(redis.url)).events).toBe(1_500);
    expect(metricSum(await gw.metrics(), 'shardwarden_gateway_buffer_overflow_total')).toBe(0);

    // A second outage with more than the buffer holds: the excess is refused and left to Discord,
    // which replays it when the shards resume once the buffer has room again. Nothing is lost.
    const resumesBefore = sim.recorder.resumes.length;
    await redis.stop();
    await sim.stream({ type: 'MESSAGE_CREATE', count: 4_000, make: (i, g) => message(1_500 + i, g) });
    const overflowed = async () => metricSum(await gw.metrics(), 'shardwarden_gateway_buffer_overflow_total');
    await waitUntil('the excess refused', async () => (await overflowed()) > 0, {
      timeoutMs: 30_000,
      intervalMs: 250,
    });
    await redis.start();
    await waitUntil('all 5,500 queued', async () => (await waitingJobs(redis.url)).events >= 5_500, {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    expect((await waitingJobs(redis.url)).events).toBe(5_500);
    const metrics = await gw.metrics();
    expect(metricSum(metrics, 'shardwarden_gateway_dispatches_dropped_total', 'reason="buffer_full"')).toBe(
      0,
    );
    expect(metricSum(metrics, 'shardwarden_gateway_session_starts_total', 'kind="resume"')).toBeGreaterThan(
      0,
    );
    // Every shard refused some (1,000 messages each, room for about 750) and resumed; between
    // them Discord replayed at least every refusal.
    const resumes = sim.recorder.resumes.slice(resumesBefore);
    expect(new Set(resumes.map((r) => r.shardId))).toEqual(new Set([0, 1, 2, 3]));
    expect(resumes.reduce((n, r) => n + r.replayed, 0)).toBeGreaterThanOrEqual(await overflowed());
  }, 150_000);
});
