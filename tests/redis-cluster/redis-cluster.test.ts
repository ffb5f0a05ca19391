// Issue 16 item 2: Shardwarden on a real 3-master Redis Cluster (3 replicas), the bot's Secret
// naming it as redis+cluster://. Real gateway processes (Kurasuta clusters, discord.js) and
// worker processes against the simulator; the REST limiter and the operator's backlog reader
// in this process. A bot's keys share one hash slot (one master); the failover tests promote
// that master's replica mid-stream and measure what the stream lost.
import { Queue } from 'bullmq';
import type { Cluster } from 'ioredis';
import { fileURLToPath } from 'node:url';
import { Routes } from 'discord.js';
import { Registry } from 'prom-client';
import { roleChanges } from '../../benchmarks/rest-limiter/run-workers.js';
import { connectRedis, type RedisClient } from '../../bot/configuration/redis-connection.js';
import { parseRedisTarget } from '../../bot/configuration/redis-target.js';
import { createDiscordRest } from '../../bot/discord-rest/index.js';
import { createLogger } from '../../bot/observability/logger.js';
import { identifyBucketKeys } from '../../bot/gateway/identify/redis-identify-throttler.js';
import {
  DEDUP_WINDOW_SECONDS,
  discordBudgetPrefix,
  eventPartitionOf,
  eventPartitionPrefixes,
  legacyQueuePrefix,
  queuePrefix,
  QUEUES,
  type BotRef,
} from '../../bot/queues/queue-names.js';
import { eventPartitionsKey } from '../../bot/queues/partition-high-water.js';
import { DispatchClaims } from '../../bot/worker/processing/dispatch-claims.js';
import { ledgerKeyOf, ledgerKeys } from '../../demo/event-ledger.js';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { BacklogReader, backlogOf } from '../../operator/autoscaling/backlog-reader.js';
import { startRedisCluster, waitUntil, type RedisClusterServer } from '../../testenv/index.js';
import {
  childPids,
  gatewayEnv,
  message,
  metricSum,
  queuedDispatches,
  startGateway,
  waitReady,
  type GatewayProcess,
} from '../gateway/harness.js';
import { messageJob, startWorker, workerEnv, type WorkerProcess } from '../worker/harness.js';

const ROLE_ROUTE = 'PUT /guilds/:guild_id/members/:user_id/roles/:role_id';
const LEDGER_MODULE = fileURLToPath(new URL('../../dist/demo/event-ledger.js', import.meta.url));

let cluster: RedisClusterServer;
let raw: RedisClient;
const sims: DiscordSimulator[] = [];
const gateways: GatewayProcess[] = [];
const workers: WorkerProcess[] = [];
const backlog = new BacklogReader();

beforeAll(async () => {
  cluster = await startRedisCluster();
  raw = connectRedis(parseRedisTarget(cluster.url, 'test'), { maxRetriesPerRequest: null });
}, 180_000);
afterEach(async () => {
  for (const gw of gateways.splice(0)) {
    gw.proc.child.kill('SIGKILL');
    for (const pid of childPids(gw.proc.child.pid!)) process.kill(pid, 'SIGKILL');
    await gw.proc.stop();
  }
  await Promise.all(workers.splice(0).map((w) => w.proc.stop()));
  await Promise.all(sims.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  backlog.close();
  raw?.disconnect();
  await cluster?.close();
});

async function simulator(seed: number, maxConcurrency = 1): Promise<DiscordSimulator> {
  const sim = await DiscordSimulator.start({
    seed,
    guilds: 50,
    guildSize: { members: 3, channels: 1, roles: 3 },
    gateway: { maxConcurrency, identifyWindowMs: 1000 },
    rest: { globalPerSecond: 20 },
    botUser: { id: `${seed}000000000000001` },
  });
  sims.push(sim);
  return sim;
}

/** One gateway pod holding the bot's 4 shards in 2 cluster processes, on the Redis Cluster. */
async function gateway(sim: DiscordSimulator, bot: BotRef, extra: Record<string, string> = {}) {
  const gw = await startGateway(
    gatewayEnv(sim, cluster.url, 0, {
      SHARDWARDEN_BOT_NAME: bot.name,
      SHARDWARDEN_BOT_NAMESPACE: bot.namespace,
      SHARDWARDEN_APPLICATION_ID: sim.applicationId,
      SHARDWARDEN_EVENTS: 'MESSAGE_CREATE',
      ...extra,
    }),
  );
  gateways.push(gw);
  return gw;
}

/** A worker with the demo's ledger module: every processed MESSAGE_CREATE id, and duplicates. */
async function worker(sim: DiscordSimulator, bot: BotRef, extra: Record<string, string> = {}) {
  const w = await startWorker(
    await workerEnv(sim, cluster.url, {
      SHARDWARDEN_BOT_NAME: bot.name,
      SHARDWARDEN_BOT_NAMESPACE: bot.namespace,
      SHARDWARDEN_APPLICATION_ID: sim.applicationId,
      SHARDWARDEN_HANDLER_MODULES: LEDGER_MODULE,
      ...extra,
    }),
  );
  workers.push(w);
  return w;
}

const ledger = (bot: BotRef) => ledgerKeys((...parts) => [queuePrefix(bot), ...parts].join(':'));
const processedIds = async (bot: BotRef) => (await raw.smembers(ledger(bot).processed)).sort();
const duplicates = async (bot: BotRef) => Number((await raw.get(ledger(bot).duplicates)) ?? 0);
const forwarded = async (gw: GatewayProcess) =>
  metricSum(await gw.metrics(), 'shardwarden_gateway_dispatches_forwarded_total');

/** Nothing left to take or finish in the events queue under `prefix` (active jobs included). */
async function eventsQueueEmpty(prefix: string, queue: string = QUEUES.events): Promise<boolean> {
  const q = new Queue(queue, { connection: raw, prefix });
  try {
    const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(c).every((n) => n === 0);
  } finally {
    await q.close();
  }
}

/** Streams `count` messages (ids from `first`) over the simulator's guilds; resolves with the ids. */
async function stream(sim: DiscordSimulator, first: number, count: number, ratePerSecond = 1_000) {
  const ids: string[] = [];
  await sim.stream({
    type: 'MESSAGE_CREATE',
    count,
    ratePerSecond,
    make: (i, g) => {
      const m = message(first + i, g);
      ids.push(m.id);
      return m;
    },
  });
  return ids;
}

/** A ledger's keys under `prefix` (SHARDWARDEN_DEMO_LEDGER_PREFIX). */
const ledgerAt = (prefix: string) => ledgerKeys(ledgerKeyOf(prefix, () => ''));

/** A hash-tagged prefix whose slot another master than the one on `port` serves. */
async function tagElsewhere(port: number): Promise<string> {
  for (let i = 0; ; i++) {
    const prefix = `{ledger-${i}}`;
    if ((await cluster.masterOf(prefix)).port !== port) return prefix;
  }
}

/**
 * Streams messages in chunks until `until` settles, then one more chunk: a stream that spans it.
 * `after` holds the ids sent once it had settled.
 */
async function streamAcross(sim: DiscordSimulator, until: Promise<unknown>, chunk = 250) {
  let settled = false;
  until.then(
    () => (settled = true),
    () => (settled = true),
  );
  const sent: string[] = [];
  while (!settled) sent.push(...(await stream(sim, sent.length, chunk)));
  const after = await stream(sim, sent.length, 1_000);
  return { sent: [...sent, ...after], after };
}

/**
 * A bot whose old keys (by name only, `shardwarden:{<name>}`) live on another master than its
 * current ones: whatever reads both must not cross slots.
 */
async function botWithOldKeysElsewhere(prefix: string): Promise<BotRef> {
  for (let i = 0; ; i++) {
    const candidate = { namespace: 'ns', name: `${prefix}-${i}` };
    const [now, old] = await Promise.all([
      cluster.masterOf(queuePrefix(candidate)),
      cluster.masterOf(legacyQueuePrefix(candidate.name)),
    ]);
    if (now.port !== old.port) return candidate;
  }
}

/** A bot whose `partitions` event partitions live on all three masters. */
async function botOnEveryMaster(prefix: string, partitions: number): Promise<BotRef> {
  for (let i = 0; ; i++) {
    const candidate = { namespace: 'ns', name: `${prefix}-${i}` };
    const masters = await Promise.all(
      eventPartitionPrefixes(candidate, partitions).map((p) =>
        cluster.masterOf(`${p}:${QUEUES.events}:wait`),
      ),
    );
    if (new Set(masters.map((m) => m.port)).size === 3) return candidate;
  }
}

/** The dispatches waiting in the events queue under `prefix`, in queue order. */
async function waitingDispatches(prefix: string) {
  const q = new Queue(QUEUES.events, { connection: raw, prefix });
  try {
    return await queuedDispatches(q);
  } finally {
    await q.close();
  }
}

describe('on a real 3-master Redis Cluster', () => {
  test('a gateway pod and a worker process a stream exactly once, batches as bodies; a killed cluster process resumes from sessions kept on the cluster', async () => {
    const bot = { namespace: 'cluster', name: 'stream' };
    const sim = await simulator(11);
    // The worker first: its look at every master's CLIENT LIST finds no consumer of an earlier
    // release, so the gateway writes its batches as bodies from its first read of the flag.
    await worker(sim, bot);
    const gw = await gateway(sim, bot);
    await waitReady(gw);
    // Every cluster process of the pod (a series each, labelled by cluster).
    await waitUntil('every cluster process writes batch bodies', async () => {
      const series = (await gw.metrics())
        .split('\n')
        .filter((line) => line.startsWith('shardwarden_gateway_batch_bodies{'));
      return series.length > 0 && series.every((line) => line.endsWith(' 1'));
    });
    const identifies = sim.recorder.identifies.length;
    const sent = await stream(sim, 0, 2_000);
    const [victim] = childPids(gw.proc.child.pid!);
    process.kill(victim!, 'SIGKILL');
    sent.push(...(await stream(sim, 2_000, 1_000))); // while the cluster process is down and back
    await waitReady(gw);
    sent.push(...(await stream(sim, 3_000, 1_000)));
    await waitUntil(
      'every message processed',
      async () => (await raw.scard(ledger(bot).processed)) >= 4_000,
      {
        timeoutMs: 90_000,
        intervalMs: 250,
      },
    );
    await waitUntil('the events queue drained', () => eventsQueueEmpty(queuePrefix(bot)), {
      timeoutMs: 30_000,
    });
    expect(await processedIds(bot)).toEqual(sent.sort());
    expect(await duplicates(bot)).toBe(0);
    // A bot of one partition never writes the high-water key (its workers' one GET finds none).
    expect(await raw.exists(eventPartitionsKey(bot))).toBe(0);
    // Sessions lived on the cluster: the killed process's two shards resumed, none identified.
    expect(sim.recorder.identifies.length).toBe(identifies);
    expect(sim.recorder.resumes.map((r) => r.shardId)).toHaveLength(2);
    expect(sim.recorder.violations).toEqual([]);
  }, 240_000);

  test('two bots of one Discord application share its identify budget on the cluster', async () => {
    const sim = await simulator(22);
    const [a, b] = [
      { namespace: 'alpha', name: 'relay' },
      { namespace: 'beta', name: 'courier' },
    ];
    // The application's bucket is held, as by a third bot that just identified.
    const heldUntil = Date.now() + 6_000;
    const { lock } = identifyBucketKeys(discordBudgetPrefix(a, sim.applicationId), 0);
    await raw.set(lock, 'another-bot', 'PX', 6_000);
    // The gateways pace by 1.5 s windows against Discord's 1 s: the simulator checks the gaps in
    // this (loaded) process, whose event-loop lag can shrink one by more than the default margin.
    const paced = { SHARDWARDEN_IDENTIFY_WINDOW_MS: '1500' };
    const [gwA, gwB] = await Promise.all([gateway(sim, a, paced), gateway(sim, b, paced)]);
    await Promise.all([waitReady(gwA), waitReady(gwB)]);
    const ok = sim.recorder.identifies.filter((i) => !i.refused);
    expect(ok).toHaveLength(8);
    expect(Math.min(...ok.map((i) => i.at))).toBeGreaterThanOrEqual(heldUntil - 20);
    // max_concurrency 1: all eight identifies, of both bots, at least Discord's window apart.
    expect(sim.recorder.violations).toEqual([]);
  }, 180_000);

  test('the REST limiter: two bots of one application share its global budget on the cluster', async () => {
    const sim = await simulator(33);
    const guilds = [...sim.world.guilds.keys()].slice(0, 6);
    const changes = roleChanges(sim, guilds, 30);
    const clients = [
      { namespace: 'a', name: 'relay' },
      { namespace: 'b', name: 'courier' },
    ].map((bot) => {
      const redis = connectRedis(parseRedisTarget(cluster.url, 'test'));
      const rest = createDiscordRest({
        bot,
        applicationId: sim.applicationId,
        token: sim.token,
        apiUrl: sim.apiUrl,
        redis,
        globalPerSecond: 20,
        globalMarginMs: 250,
        registry: new Registry(),
        logger: createLogger('discord-rest', 'silent'),
      });
      return { redis, rest };
    });
    try {
      await Promise.all(
        clients.map(({ rest }, w) =>
          Promise.all(
            changes
              .filter((_, i) => i % 2 === w)
              .map(([g, u, r]) => rest.put(Routes.guildMemberRole(g, u, r))),
          ),
        ),
      );
      expect(sim.recorder.counters.rest429).toBe(0);
      expect(sim.recorder.violations).toEqual([]);
      const roleCalls = sim.recorder.restCalls.filter((c) => c.route === ROLE_ROUTE);
      expect(roleCalls.map((c) => c.status)).toEqual(changes.map(() => 204));
    } finally {
      for (const c of clients) c.redis.disconnect();
    }
  }, 120_000);

  test("the operator's backlog reader counts a bot's queues, and its old keys' in another slot", async () => {
    const bot = await botWithOldKeysElsewhere('backlog');
    const add = async (prefix: string, queue: string, n: number) => {
      const q = new Queue(queue, { connection: raw, prefix });
      try {
        await q.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'x', data: { i } })));
      } finally {
        await q.close();
      }
    };
    await add(queuePrefix(bot), QUEUES.events, 7);
    await add(queuePrefix(bot), QUEUES.interactions, 2);
    // Releases before namespaced keys queued one dispatch per job, in the queue now named singleEvents.
    await add(legacyQueuePrefix(bot.name), QUEUES.singleEvents, 5);
    const key = `${bot.namespace}/${bot.name}`;
    const current = await backlog.read(key, bot, cluster.url);
    expect(current.find((q) => q.queue === QUEUES.events)?.waiting).toBe(7);
    expect(backlogOf(current)).toBe(9);
    expect(backlogOf(await backlog.read(key, bot, cluster.url, Date.now(), true))).toBe(14);
    backlog.forget(key);
  }, 60_000);

  test('a worker drains the queues of the old keys, on another master than its own', async () => {
    const bot = await botWithOldKeysElsewhere('drain');
    const sim = await simulator(66);
    // Releases before namespaced keys queued one dispatch per job, in the queue now named singleEvents.
    const old = new Queue(QUEUES.singleEvents, { connection: raw, prefix: legacyQueuePrefix(bot.name) });
    try {
      await old.addBulk([1, 2, 3, 4, 5].map(messageJob));
      await worker(sim, bot, {
        SHARDWARDEN_LEGACY_KEYS: '1',
        SHARDWARDEN_LEGACY_QUEUE_CHECK_MS: '200',
        SHARDWARDEN_LEGACY_QUEUE_IDLE_MS: '1000',
      });
      await waitUntil('the old jobs processed', async () => (await raw.scard(ledger(bot).processed)) === 5, {
        timeoutMs: 60_000,
      });
      expect(await processedIds(bot)).toEqual(['1', '2', '3', '4', '5']);
      await waitUntil('the old queue drained', () =>
        eventsQueueEmpty(legacyQueuePrefix(bot.name), QUEUES.singleEvents),
      );
    } finally {
      await old.close();
    }
  }, 120_000);

  test("a bot of 4 event partitions uses every master: each dispatch in its guild's partition, in order, processed once with its claim in that partition's slot; a worker told of fewer partitions drains the others", async () => {
    const partitions = 4;
    const bot = await botOnEveryMaster('partitioned', partitions);
    const prefixes = eventPartitionPrefixes(bot, partitions);
    const env = { SHARDWARDEN_EVENT_PARTITIONS: String(partitions) };
    const sim = await simulator(77);
    const gw = await gateway(sim, bot, env);
    await waitReady(gw);
    const first = await stream(sim, 0, 2_000);
    await waitUntil('the stream forwarded', async () => (await forwarded(gw)) >= first.length, {
      timeoutMs: 90_000,
      intervalMs: 250,
    });

    // Before any worker runs: what each partition's queue holds, in queue order.
    const queued = await Promise.all(prefixes.map(waitingDispatches));
    expect(queued.map((q) => q.length > 0)).toEqual([true, true, true, true]);
    queued.forEach((dispatches, p) =>
      expect(dispatches.filter((d) => eventPartitionOf(d, partitions) !== p)).toEqual([]),
    );
    expect([...new Set(queued.flat().map((d) => (d.d as { id: string }).id))].sort()).toEqual(
      [...first].sort(),
    );
    // A guild's dispatches are in one partition, in the order the gateway received them.
    for (const dispatches of queued) {
      const byGuild = new Map<string, number[]>();
      for (const d of dispatches) {
        const { guild_id: guild, id } = d.d as { guild_id: string; id: string };
        byGuild.set(guild, [...(byGuild.get(guild) ?? []), Number(id)]);
      }
      for (const ids of byGuild.values()) expect(ids).toEqual([...ids].sort((a, b) => a - b));
    }
    // The operator's backlog reader counts every partition's jobs (one batch is one job).
    const jobs = (
      await Promise.all(
        prefixes.map(async (prefix) => {
          const q = new Queue(QUEUES.events, { connection: raw, prefix });
          try {
            return await q.getWaitingCount();
          } finally {
            await q.close();
          }
        }),
      )
    ).reduce((a, b) => a + b, 0);
    const key = `${bot.namespace}/${bot.name}`;
    const counted = await backlog.read(key, bot, cluster.url, Date.now(), false, partitions);
    expect(counted.filter((q) => q.partition).map((q) => q.partition)).toEqual([1, 2, 3]);
    expect(backlogOf(counted)).toBe(jobs);
    // The gateway raised the bot's high-water key before its first job: a reader told of fewer
    // partitions (the spec lowered) still counts every partition written.
    expect(await raw.get(eventPartitionsKey(bot))).toBe(String(partitions));
    const lowered = await backlog.read(key, bot, cluster.url, Date.now(), false, 1);
    expect(backlogOf(lowered)).toBe(jobs);
    backlog.forget(key);

    const w = await worker(sim, bot, env);
    await waitUntil(
      'the first stream processed',
      async () => (await raw.scard(ledger(bot).processed)) >= 2_000,
      {
        timeoutMs: 120_000,
        intervalMs: 250,
      },
    );
    for (const prefix of prefixes)
      await waitUntil(`${prefix} drained`, () => eventsQueueEmpty(prefix), { timeoutMs: 30_000 });
    // Each claim in its partition's slot, none under the bot's own prefix for the others.
    for (const d of queued.flat().slice(0, 200)) {
      const p = eventPartitionOf(d, partitions);
      expect(await new DispatchClaims(raw, prefixes[p]!, DEDUP_WINDOW_SECONDS).markOf(d.key)).toBe('done');
      if (p !== 0)
        expect(await new DispatchClaims(raw, prefixes[0]!, DEDUP_WINDOW_SECONDS).markOf(d.key)).toBeNull();
    }
    // The worker read every master's CLIENT LIST and found no consumer of the release with a key
    // per dispatch: the claims stayed in the buckets alone.
    for (const prefix of prefixes) expect(await raw.exists(`${prefix}:claims:per-key`)).toBe(0);

    // The partition count lowered to 2 on the workers while the gateway still writes 4: the
    // worker consumes partitions 0 and 1 and drains 2 and 3, so nothing waits there for ever.
    await w.proc.stop();
    workers.splice(workers.indexOf(w), 1);
    const second = await stream(sim, 2_000, 1_000);
    await worker(sim, bot, {
      SHARDWARDEN_EVENT_PARTITIONS: '2',
      SHARDWARDEN_LEGACY_QUEUE_CHECK_MS: '200',
      SHARDWARDEN_LEGACY_QUEUE_IDLE_MS: '1000',
    });
    await waitUntil(
      'the second stream processed',
      async () => (await raw.scard(ledger(bot).processed)) >= 3_000,
      {
        timeoutMs: 120_000,
        intervalMs: 250,
      },
    );
    for (const prefix of prefixes)
      await waitUntil(`${prefix} drained`, () => eventsQueueEmpty(prefix), { timeoutMs: 30_000 });
    expect(await processedIds(bot)).toEqual([...first, ...second].sort());
    expect(await duplicates(bot)).toBe(0);
    expect(sim.recorder.violations).toEqual([]);
  }, 360_000);

  test("a master refusing writes (maxmemory reached) holds back only its partitions' dispatches: they stay buffered, none dropped, the other partitions' written once, and all run once when it accepts writes again", async () => {
    const partitions = 4;
    const bot = await botOnEveryMaster('refusing', partitions);
    const prefixes = eventPartitionPrefixes(bot, partitions);
    const env = { SHARDWARDEN_EVENT_PARTITIONS: String(partitions) };
    const masters = await Promise.all(prefixes.map((p) => cluster.masterOf(`${p}:${QUEUES.events}:wait`)));
    // A master other than partition 0's (the bot's own slot: sessions, the announcement). The
    // refused partitions' lanes retry and probe their own slot; the other lanes keep writing.
    const refused = masters.findIndex((m) => m.port !== masters[0]!.port);
    const isRefused = (partition: number) => masters[partition]!.port === masters[refused]!.port;
    const openPrefixes = prefixes.filter((_, partition) => !isRefused(partition));
    const refusedPrefixes = prefixes.filter((_, partition) => isRefused(partition));
    const node = (raw as Cluster).nodes('master').find((n) => n.options.port === masters[refused]!.port)!;
    const sim = await simulator(66);
    const gw = await gateway(sim, bot, env);
    await waitReady(gw);
    const errors = async () => metricSum(await gw.metrics(), 'shardwarden_gateway_enqueue_errors_total');
    const before = await errors();
    await node.config('SET', 'maxmemory-policy', 'noeviction');
    await node.config('SET', 'maxmemory', '1');
    const sent: string[] = [];
    try {
      let open = 0;
      await sim.stream({
        type: 'MESSAGE_CREATE',
        count: 500,
        ratePerSecond: 1_000,
        make: (i, g) => {
          const m = message(i, g);
          sent.push(m.id);
          if (!isRefused(eventPartitionOf({ t: 'MESSAGE_CREATE', d: m }, partitions))) open += 1;
          return m;
        },
      });
      // Past the failures after which the gateway asks whether Redis accepts writes (3 in a row).
      await waitUntil('the refused batch retried', async () => (await errors()) >= before + 5, {
        timeoutMs: 60_000,
        intervalMs: 200,
      });
      // Meanwhile the other partitions' dispatches are all written; the refused ones' none.
      const queued = async (of: string[]) => (await Promise.all(of.map(waitingDispatches))).flat().length;
      await waitUntil(
        'the other partitions written while one master refuses',
        async () => (await queued(openPrefixes)) === open,
        {
          timeoutMs: 60_000,
          intervalMs: 250,
        },
      );
      expect(open).toBeLessThan(sent.length); // the refused master's partitions had their share
      expect(await queued(refusedPrefixes)).toBe(0);
    } finally {
      await node.config('SET', 'maxmemory', '0');
    }
    await waitUntil('the stream forwarded', async () => (await forwarded(gw)) >= sent.length, {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    // The other lanes' batches were written once, the refused lane's once it could: each dispatch is queued once.
    const keys = (await Promise.all(prefixes.map(waitingDispatches))).flat().map((d) => d.key);
    expect(keys).toHaveLength(sent.length);
    expect(new Set(keys).size).toBe(sent.length);
    await worker(sim, bot, env);
    await waitUntil(
      'every message processed',
      async () => (await raw.scard(ledger(bot).processed)) >= sent.length,
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    for (const prefix of prefixes)
      await waitUntil(`${prefix} drained`, () => eventsQueueEmpty(prefix), { timeoutMs: 30_000 });
    const dropped = await gw.metrics();
    for (const reason of ['rejected', 'buffer_full'])
      expect(metricSum(dropped, 'shardwarden_gateway_dispatches_dropped_total', `reason="${reason}"`)).toBe(
        0,
      );
    expect(await processedIds(bot)).toEqual([...sent].sort());
    expect(await duplicates(bot)).toBe(0);
    expect(sim.recorder.violations).toEqual([]);
  }, 300_000);

  test('raising the partition count on a live bot as a rollout does (workers first, then the gateway pod stopped with SIGTERM and started with the new count, resuming its sessions): every dispatch processed once', async () => {
    const bot = { namespace: 'ns', name: 'repartitioned' };
    const sim = await simulator(88);
    const before = await gateway(sim, bot, { SHARDWARDEN_EVENT_PARTITIONS: '2' });
    await waitReady(before);
    // The worker Deployment rolls in seconds, the gateway StatefulSet after it.
    await worker(sim, bot, { SHARDWARDEN_EVENT_PARTITIONS: '4' });
    const identifies = sim.recorder.identifies.length;
    const rolled = (async () => {
      await waitUntil('some of the stream forwarded', async () => (await forwarded(before)) >= 500, {
        timeoutMs: 60_000,
        intervalMs: 100,
      });
      await before.proc.stop(30_000);
      gateways.splice(gateways.indexOf(before), 1);
      const after = await gateway(sim, bot, { SHARDWARDEN_EVENT_PARTITIONS: '4' });
      await waitReady(after);
      return after;
    })();
    const { sent } = await streamAcross(sim, rolled);
    await rolled;
    await waitUntil(
      'every message processed',
      async () => (await raw.scard(ledger(bot).processed)) >= sent.length,
      {
        timeoutMs: 120_000,
        intervalMs: 250,
      },
    );
    for (const prefix of eventPartitionPrefixes(bot, 4))
      await waitUntil(`${prefix} drained`, () => eventsQueueEmpty(prefix), { timeoutMs: 30_000 });
    expect(await processedIds(bot)).toEqual([...sent].sort());
    expect(await duplicates(bot)).toBe(0);
    expect(await raw.get(eventPartitionsKey(bot))).toBe('4');
    // The new pod raised the high-water key before writing partitions the old one did not
    // (BullMQ's job id counter of each).
    const [, , third, fourth] = eventPartitionPrefixes(bot, 4);
    for (const prefix of [third, fourth])
      expect(Number(await raw.get(`${prefix}:${QUEUES.events}:id`))).toBeGreaterThan(0);
    // The new pod resumed the sessions the old one stored at what it had enqueued.
    expect(sim.recorder.identifies.length).toBe(identifies);
    expect(sim.recorder.resumes).toHaveLength(4);
    expect(sim.recorder.violations).toEqual([]);
  }, 300_000);

  // The kill failover also exercises the workers' stuck-consumer watch (stuck-consumer.ts): after
  // a killed master's promotion a BullMQ consumer was seen to stop taking batches (how often:
  // docs/install.md); it is replaced, the queue drains, and nothing runs twice. The replacement
  // itself is tested deterministically in tests/worker/stuck-consumer-replacement.test.ts.
  const failoverModes = ['graceful', 'kill'] as const;
  test.each(failoverModes)(
    "a %s failover of the bot's master mid-stream: every client waits it out, nothing after it lost",
    async (mode) => {
      const bot = { namespace: 'failover', name: mode };
      const from = await cluster.masterOf(queuePrefix(bot));
      // The ledger on another master: it counts the stream's losses, not its own.
      const ledgerPrefix = await tagElsewhere(from.port);
      const sim = await simulator(mode === 'graceful' ? 44 : 55);
      const gw = await gateway(sim, bot);
      await waitReady(gw);
      const w = await worker(sim, bot, { SHARDWARDEN_DEMO_LEDGER_PREFIX: ledgerPrefix });
      const failover = waitUntil('some of the stream forwarded', async () => (await forwarded(gw)) >= 500, {
        timeoutMs: 60_000,
        intervalMs: 100,
      }).then(() => cluster.failover(queuePrefix(bot), mode));
      const { sent, after } = await streamAcross(sim, failover);
      const { to } = await failover;
      expect(after.length).toBeGreaterThan(0);
      await waitUntil('the whole stream forwarded', async () => (await forwarded(gw)) >= sent.length, {
        timeoutMs: 180_000,
        intervalMs: 250,
      });
      await waitUntil('the events queue drained', () => eventsQueueEmpty(queuePrefix(bot)), {
        timeoutMs: 180_000,
        intervalMs: 250,
      });
      const processed = new Set(await raw.smembers(ledgerAt(ledgerPrefix).processed));
      const lost = sent.filter((id) => !processed.has(id));
      const dup = Number((await raw.get(ledgerAt(ledgerPrefix).duplicates)) ?? 0);
      const enqueueErrors = metricSum(await gw.metrics(), 'shardwarden_gateway_enqueue_errors_total');
      const replaced = metricSum(await w.metrics(), 'shardwarden_worker_consumer_restarts_total');
      // The measurement, for docs/install.md: a graceful failover (the replica catches up first)
      // loses nothing; a killed master loses what it acknowledged and had not yet replicated,
      // and a job whose completion it lost runs again.
      console.log(
        `Redis Cluster ${mode} failover of master :${from.port} -> :${to.port} mid-stream: ` +
          `${sent.length} sent (${after.length} after the promotion), ${processed.size} processed, ` +
          `${lost.length} lost, ${dup} run twice, ${enqueueErrors} gateway enqueue errors, ` +
          `${replaced} stuck consumers replaced`,
      );
      expect([...processed].every((id) => sent.includes(id))).toBe(true);
      // Enqueued once the new master served the slot: the design guarantees these.
      expect(after.filter((id) => !processed.has(id))).toEqual([]);
      // The gateway's enqueues mostly wait the failover out; one that fails anyway (seen once in
      // a loaded run of the graceful failover) stays in the gateway's buffer and is sent again,
      // so what is asserted is that nothing is lost; the count is printed above.
      // Nothing runs twice in either mode (issue #16), a replaced consumer's jobs included.
      expect(dup).toBe(0);
      if (mode === 'graceful') expect(lost).toEqual([]);
      if (mode === 'kill') await cluster.restart(from);
    },
    420_000,
  );
});
