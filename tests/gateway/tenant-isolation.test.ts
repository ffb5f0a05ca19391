// Issue 15 item 10: bots share a Redis but not each other's keys. Two DiscordBots of one name
// in two namespaces keep their jobs, resume sessions and backlogs apart; two bots on one Discord
// application share its identify budget; and after an upgrade from keys by name only, workers
// process what was queued under the old keys. Real gateway and worker processes, real Redis,
// the simulator (one per Discord application).
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { BacklogReader } from '../../operator/autoscaling/backlog-reader.js';
import {
  DEDUP_WINDOW_SECONDS,
  legacyQueuePrefix,
  queuePrefix,
  QUEUES,
  type BotRef,
} from '../../bot/queues/queue-names.js';
import { DispatchClaims } from '../../bot/worker/processing/dispatch-claims.js';
import { oldQueueState } from '../../bot/worker/processing/legacy-queues.js';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';
import {
  childPids,
  gatewayEnv,
  message,
  metricSum,
  queuedDispatches,
  startGateway,
  waitReady,
  type GatewayProcess,
} from './harness.js';
import { messageJob, startWorker, workerEnv, type WorkerProcess } from '../worker/harness.js';

const alpha: BotRef = { namespace: 'alpha', name: 'relay' };
const beta: BotRef = { namespace: 'beta', name: 'relay' };

let redis: RedisServer;
let raw: Redis;
const sims: DiscordSimulator[] = [];
const gateways: GatewayProcess[] = [];
const workers: WorkerProcess[] = [];
const backlog = new BacklogReader();

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
});
afterEach(async () => {
  for (const gw of gateways.splice(0)) {
    gw.proc.child.kill('SIGKILL');
    for (const pid of childPids(gw.proc.child.pid!)) process.kill(pid, 'SIGKILL');
    await gw.proc.stop();
  }
  await Promise.all(workers.splice(0).map((w) => w.proc.stop()));
  await Promise.all(sims.splice(0).map((s) => s.stop()));
  await raw.flushall();
});
afterAll(async () => {
  backlog.close();
  raw.disconnect();
  await redis.close();
});

async function simulator(seed: number): Promise<DiscordSimulator> {
  const sim = await DiscordSimulator.start({
    seed,
    guilds: 6,
    guildSize: { members: 3 },
    gateway: { maxConcurrency: 1, identifyWindowMs: 1000 },
    // One Discord application per simulator: its bot user's id is the application's.
    botUser: { id: `${seed}000000000000001` },
  });
  sims.push(sim);
  return sim;
}

/** One gateway pod holding both shards of `bot`, as the operator would render it. */
async function gateway(
  sim: DiscordSimulator,
  bot: BotRef,
  extra: Record<string, string> = {},
): Promise<GatewayProcess> {
  const gw = await startGateway(
    gatewayEnv(sim, redis.url, 0, {
      SHARDWARDEN_BOT_NAME: bot.name,
      SHARDWARDEN_BOT_NAMESPACE: bot.namespace,
      SHARDWARDEN_APPLICATION_ID: sim.applicationId,
      SHARDWARDEN_TOTAL_SHARDS: '2',
      SHARDWARDEN_SHARDS_PER_POD: '2',
      SHARDWARDEN_CLUSTERS_PER_POD: '1',
      SHARDWARDEN_EVENTS: 'MESSAGE_CREATE',
      ...extra,
    }),
  );
  gateways.push(gw);
  return gw;
}

async function worker(sim: DiscordSimulator, bot: BotRef, extra: Record<string, string> = {}) {
  const w = await startWorker(
    await workerEnv(sim, redis.url, {
      SHARDWARDEN_BOT_NAME: bot.name,
      SHARDWARDEN_BOT_NAMESPACE: bot.namespace,
      SHARDWARDEN_APPLICATION_ID: sim.applicationId,
      ...extra,
    }),
  );
  workers.push(w);
  return w;
}

/** Jobs under `prefix` still to be taken or finished (what the worker's drain reads). */
const queuedJobs = async (redis: Redis, prefix: string) => (await oldQueueState(redis, prefix)).jobs;

/** Message ids waiting in `bot`'s events queue. */
async function waitingMessageIds(bot: BotRef): Promise<string[]> {
  const q = new Queue(QUEUES.events, { connection: { url: redis.url }, prefix: queuePrefix(bot) });
  try {
    return (await queuedDispatches(q)).map((d) => (d.d as { id: string }).id).sort();
  } finally {
    await q.close();
  }
}

/** Waiting batches of events, as the operator's backlog reader counts them. */
async function waitingBatches(bot: BotRef): Promise<number> {
  const queues = await backlog.read(`${bot.namespace}/${bot.name}`, bot, redis.url);
  return queues.find((q) => q.queue === QUEUES.events)!.waiting;
}

/** The session ids stored for `bot`'s two shards. */
async function storedSessions(bot: BotRef): Promise<(string | undefined)[]> {
  return Promise.all(
    [0, 1].map(async (shard) => {
      const v = await raw.get(`${queuePrefix(bot)}:session:2:${shard}`);
      return v ? (JSON.parse(v) as { sessionId: string }).sessionId : undefined;
    }),
  );
}

/** Sends `count` messages, one per guild in turn, with ids from `first`. */
async function send(sim: DiscordSimulator, first: number, count: number): Promise<string[]> {
  const guilds = [...sim.world.guilds.keys()];
  const ids: string[] = [];
  for (let i = first; i < first + count; i++) {
    const payload = message(i, guilds[i % guilds.length]!);
    sim.dispatch('MESSAGE_CREATE', payload, { guildId: payload.guild_id });
    ids.push(payload.id);
  }
  return ids.sort();
}

describe('tenant isolation in one Redis', () => {
  test('two bots named "relay" in two namespaces keep their jobs, sessions and backlogs apart', async () => {
    const [simA, simB] = [await simulator(101), await simulator(202)];
    expect(simA.applicationId).not.toBe(simB.applicationId);
    const [gwA, gwB] = await Promise.all([gateway(simA, alpha), gateway(simB, beta)]);
    await Promise.all([waitReady(gwA), waitReady(gwB)]);

    // Jobs: each bot's queue holds exactly the events of its own Discord application.
    const sentA = await send(simA, 0, 12);
    const sentB = await send(simB, 100, 7);
    await waitUntil('both bots forwarded their messages', async () => {
      return (await waitingMessageIds(alpha)).length === 12 && (await waitingMessageIds(beta)).length === 7;
    });
    expect(await waitingMessageIds(alpha)).toEqual(sentA);
    expect(await waitingMessageIds(beta)).toEqual(sentB);

    // Backlogs: a worker of beta takes beta's jobs and none of alpha's.
    const wB = await worker(simB, beta);
    const completedB = async () =>
      metricSum(await wB.metrics(), 'shardwarden_worker_dispatches_total', 'outcome="completed"');
    await waitUntil('beta processed its backlog', async () => (await completedB()) === 7);
    expect(await waitingBatches(beta)).toBe(0);
    expect(await waitingBatches(alpha)).toBeGreaterThan(0);
    expect(await waitingMessageIds(alpha)).toEqual(sentA);

    // Sessions: alpha restarts while beta keeps receiving (and storing its sequence); alpha
    // resumes its own sessions, beta's stay beta's.
    const identifiesA = simA.recorder.identifies.length;
    await gwA.proc.stop();
    await send(simB, 200, 6);
    await waitUntil(
      'beta stored its newer sequences',
      async () =>
        (await waitingBatches(beta)) === 0 &&
        metricSum(await wB.metrics(), 'shardwarden_worker_dispatches_total', 'outcome="completed"') === 13,
    );
    const gwA2 = await gateway(simA, alpha);
    await waitReady(gwA2);
    expect(simA.recorder.identifies.length).toBe(identifiesA);
    expect(simA.recorder.resumes.map((r) => r.shardId).sort()).toEqual([0, 1]);
    const liveB = simB.recorder.identifies.filter((i) => !i.refused).map((i) => i.sessionId);
    expect((await storedSessions(beta)).every((id) => id !== undefined && liveB.includes(id))).toBe(true);
    expect(simA.recorder.violations).toEqual([]);
    expect(simB.recorder.violations).toEqual([]);
    // A worker of a fresh install leaves nothing under the old keys (it only looks there).
    expect(await raw.keys(`${legacyQueuePrefix('relay')}*`)).toEqual([]);
  }, 180_000);

  test('two bots of one Discord application (one token) share its identify budget', async () => {
    const sim = await simulator(303);
    const courier: BotRef = { namespace: 'beta', name: 'courier' };
    // The application's bucket is held, as by a third bot of the application that just identified:
    // neither bot may identify before it is free (each bot's own keys would let them at once).
    const heldUntil = Date.now() + 8_000;
    await raw.set(`shardwarden:{app:${sim.applicationId}}:identify:0:lock`, 'another-bot', 'PX', 8_000);
    const [a, b] = await Promise.all([gateway(sim, alpha), gateway(sim, courier)]);
    await Promise.all([waitReady(a), waitReady(b)]);
    const ok = sim.recorder.identifies.filter((i) => !i.refused);
    expect(Math.min(...ok.map((i) => i.at))).toBeGreaterThanOrEqual(heldUntil - 20); // Redis' timer granularity
    expect(ok).toHaveLength(4);
    // max_concurrency 1: all four identifies, of both bots, at least Discord's window apart.
    expect(sim.recorder.violations).toEqual([]);
    const times = ok.map((i) => i.at).sort((x, y) => x - y);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(1000);
  }, 120_000);

  test('after an upgrade, a gateway pod resumes the sessions its old release stored under the old keys', async () => {
    const sim = await simulator(505);
    const owner = { SHARDWARDEN_LEGACY_KEYS: '1' }; // the operator's word: no other bot is named relay
    const first = await gateway(sim, alpha, owner);
    await waitReady(first);
    await first.proc.stop(); // SIGTERM: the sessions are written
    // As the old release left them: under `shardwarden:{<bot>}`, nothing under the new keys.
    for (const shard of [0, 1])
      await raw.rename(
        `${queuePrefix(alpha)}:session:2:${shard}`,
        `${legacyQueuePrefix(alpha.name)}:session:2:${shard}`,
      );
    const identifies = sim.recorder.identifies.length;
    await waitReady(await gateway(sim, alpha, owner));
    expect(sim.recorder.identifies.length).toBe(identifies);
    expect(sim.recorder.resumes.map((r) => r.shardId).sort()).toEqual([0, 1]);
    // Moved, not copied: nothing left to resume a second time.
    expect(await raw.keys(`${legacyQueuePrefix(alpha.name)}:session:*`)).toEqual([]);
    expect(sim.recorder.violations).toEqual([]);
  }, 120_000);

  test('after an upgrade, jobs queued under the old keys (by name only) are processed, and those added later too', async () => {
    const sim = await simulator(404);
    const legacy = legacyQueuePrefix(alpha.name);
    // An old release queued one dispatch per job, in the queue now named singleEvents.
    const oldEvents = new Queue(QUEUES.singleEvents, { connection: { url: redis.url }, prefix: legacy });
    const oldTasks = new Queue(QUEUES.tasks, { connection: { url: redis.url }, prefix: legacy });
    try {
      // What an old release left: queued events, and a repeating task of its own.
      const queued = await oldEvents.addBulk([1, 2, 3, 4, 5].map(messageJob));
      await oldTasks.upsertJobScheduler('old-schedule', { every: 60_000 }, { name: 'role-sync', data: {} });
      const w = await worker(sim, alpha, {
        SHARDWARDEN_LEGACY_KEYS: '1',
        SHARDWARDEN_LEGACY_QUEUE_CHECK_MS: '200',
        SHARDWARDEN_LEGACY_QUEUE_IDLE_MS: '1000',
      });
      const draining = async () =>
        JSON.stringify(await (await fetch(`http://127.0.0.1:${w.port}/readyz`)).json()).includes('draining');
      const completed = async () =>
        metricSum(
          await w.metrics(),
          'shardwarden_worker_jobs_total',
          'type="MESSAGE_CREATE",outcome="completed"',
        );
      await waitUntil(
        'the old queue drained',
        async () => (await queuedJobs(raw, legacy)) === 0 && (await completed()) === 5,
      );
      expect(await oldTasks.getJobSchedulersCount()).toBe(0);
      // Claimed under the bot's own prefix, as the new queues' dispatches are: a replay of one of
      // them in a new gateway's batch is skipped.
      const marks = new DispatchClaims(raw, queuePrefix(alpha), DEDUP_WINDOW_SECONDS);
      for (const { id } of queued) expect(await marks.markOf(String(id))).toBe('done');
      expect(await raw.keys(`${legacy}:claims:*`)).toEqual([]);
      // Quiet for the idle time: the old queues' consumers close.
      await waitUntil('the old queues are left alone', async () => !(await draining()));
      // A gateway pod of the old release, still rolling out, adds more: taken up again.
      await oldEvents.addBulk([6, 7, 8].map(messageJob));
      await waitUntil('the late old jobs processed', async () => (await completed()) === 8);
      expect(await queuedJobs(raw, legacy)).toBe(0);
      expect(await queuedJobs(raw, queuePrefix(alpha))).toBe(0);
    } finally {
      await Promise.all([oldEvents.close(), oldTasks.close()]);
    }
  }, 120_000);
});
