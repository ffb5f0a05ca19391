// The forwarder against a real Redis and real BullMQ queues: batching by size and by delay
// (a batch of events is one job), routing and job contents, de-duplication keys (applied by the
// worker's claim), the bounded buffer through an outage, the safe resume sequence, and shutdown.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { DispatchForwarder, type ForwarderOptions } from '../../bot/gateway/forwarding/dispatch-forwarder.js';
import { dedupKey } from '../../bot/gateway/forwarding/dedup-key.js';
import { GatewayMetrics } from '../../bot/gateway/metrics.js';
import { createLogger } from '../../bot/observability/logger.js';
import {
  BATCH_BODY_TTL_SECONDS,
  batchBodiesFlagKey,
  eventPartitionOf,
  eventPartitionPrefixes,
  QUEUES,
  queuePrefix,
} from '../../bot/queues/queue-names.js';
import { BatchFormatWatch } from '../../bot/gateway/forwarding/batch-format.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';
import { metricSum, queuedDispatches, runOnce } from './harness.js';

let redis: RedisServer;
let probe: Redis; // the forwarder's write probe, and CONFIG for the maxmemory test
const openQueues: Queue[] = [];
const forwarders: DispatchForwarder[] = [];
let botSeq = 0;

beforeAll(async () => {
  redis = await startRedis();
  probe = new Redis(redis.url, { maxRetriesPerRequest: null });
  probe.on('error', () => undefined);
});
afterAll(async () => {
  // Flushes what a test left buffered, so no batch timer outlives the file.
  await Promise.all(forwarders.splice(0).map((f) => f.drain(5_000)));
  await Promise.all(openQueues.splice(0).map((q) => q.close()));
  probe?.disconnect();
  await redis?.close();
});

const CONFIGURED = new Set(['INTERACTION_CREATE', 'MESSAGE_CREATE', 'MESSAGE_UPDATE']);

/**
 * A forwarder on a fresh bot (its own queues, `partitions` event partitions), with its own metrics
 * registry. `urlOf` puts a partition's queue on another Redis (a master of its own).
 */
function setup({
  partitions = 1,
  urlOf = () => redis.url,
  ...options
}: Partial<ForwarderOptions> & { partitions?: number; urlOf?: (partition: number) => string } = {}) {
  botSeq += 1;
  const connection = { url: redis.url };
  const bot = { namespace: 'default', name: `fwdbot${botSeq}` };
  const prefix = queuePrefix(bot);
  const partitionQueues = eventPartitionPrefixes(bot, partitions).map(
    (partitionPrefix, partition) =>
      new Queue(QUEUES.events, { connection: { url: urlOf(partition) }, prefix: partitionPrefix }),
  );
  const queues = {
    interactions: new Queue(QUEUES.interactions, { connection, prefix }),
    events: partitionQueues[0]!,
  };
  for (const q of [queues.interactions, ...partitionQueues]) {
    q.on('error', () => undefined); // connection errors during the outage test
    openQueues.push(q);
  }
  const registry = new Registry();
  const forwarder = new DispatchForwarder(
    { interactions: queues.interactions, events: partitionQueues },
    {
      events: CONFIGURED,
      generation: 3,
      batchSize: 10,
      batchDelayMs: 60_000,
      batchesInFlight: 4,
      bufferLimit: 1_000,
      probeWrite: () => probe.set('forwarder-test-probe', '1'),
      ...options,
    },
    new GatewayMetrics(registry),
    createLogger('test', 'silent'),
  );
  forwarders.push(forwarder);
  const metric = async (name: string, match = '') => metricSum(await registry.metrics(), name, match);
  /** The queued events a worker would run (each key once). */
  const runnable = async () => runOnce(redis.url, prefix, await queuedDispatches(queues.events));
  return { forwarder, queues, partitionQueues, metric, runnable };
}

const message = (id: number) => ({ id: String(id), channel_id: '1', content: `m${id}` });

/** Dispatches waiting in `queue`: in batches (events), or a job each (interactions). */
const waiting = async (queue: Queue) => (await queuedDispatches(queue)).length;

async function waitForDispatches(queue: Queue, n: number): Promise<void> {
  await waitUntil(`${n} dispatches in ${queue.name}`, async () => (await waiting(queue)) === n, {
    timeoutMs: 30_000,
    intervalMs: 20,
  });
}

/** A forwarder whose buffer holds 20 dispatches, recording the shards it asks to resume. */
async function withSmallBuffer() {
  const resumes: number[] = [];
  const bot = setup({
    batchSize: 4,
    batchDelayMs: 20,
    bufferLimit: 20,
    resumeShard: async (shardId) => {
      resumes.push(shardId);
    },
  });
  await bot.queues.events.waitUntilReady();
  return { ...bot, resumes };
}

/** MESSAGE_CREATEs `from`..`to` of shard `shardId`, sequence = message id, in session s1. */
function acceptMessages(forwarder: DispatchForwarder, shardId: number, from: number, to: number): void {
  for (let seq = from; seq <= to; seq++) forwarder.accept('MESSAGE_CREATE', message(seq), shardId, seq, 's1');
}

/** The jobs can be visible in Redis a moment before the forwarder has the reply. */
async function waitForSent(forwarder: DispatchForwarder): Promise<void> {
  await waitUntil('buffer sent', async () => forwarder.buffered() === 0, {
    timeoutMs: 30_000,
    intervalMs: 5,
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A guild id in each of `partitions` event partitions, partition i's at index i. */
const guildPerPartition = (partitions: number) =>
  Array.from({ length: partitions }, (_, partition) => {
    for (let g = 1; ; g++)
      if (eventPartitionOf({ t: 'MESSAGE_CREATE', d: { guild_id: String(g) } }, partitions) === partition)
        return String(g);
  });
const inGuild = (id: number, guild: string) => ({ ...message(id), guild_id: guild });

describe('DispatchForwarder', () => {
  test('a full batch is enqueued at once; a partial one waits for the delay', async () => {
    const { forwarder, queues, metric } = setup({ batchSize: 10, batchDelayMs: 60_000 });
    for (let i = 1; i <= 10; i++) forwarder.accept('MESSAGE_CREATE', message(i), 0, i);
    await waitForDispatches(queues.events, 10); // the delay is a minute: only the size rule can do this
    await waitForSent(forwarder);
    expect(await metric('shardwarden_gateway_batch_size_count')).toBe(1);
    expect(await queues.events.getWaitingCount()).toBe(1); // one job

    for (let i = 11; i <= 15; i++) forwarder.accept('MESSAGE_CREATE', message(i), 0, i);
    await pause(300);
    expect(forwarder.buffered()).toBe(5);
    expect(await waiting(queues.events)).toBe(10);
    expect(await metric('shardwarden_gateway_buffer_depth')).toBe(5);
  });

  test('a partial batch is enqueued as one batch after the delay', async () => {
    const { forwarder, queues, metric } = setup({ batchSize: 1_000, batchDelayMs: 100 });
    for (let i = 1; i <= 5; i++) forwarder.accept('MESSAGE_CREATE', message(i), 0, i);
    await waitForDispatches(queues.events, 5);
    await waitForSent(forwarder);
    expect(await queues.events.getWaitingCount()).toBe(1);
    expect(await metric('shardwarden_gateway_batch_size_count')).toBe(1);
    expect(await metric('shardwarden_gateway_batch_size_sum')).toBe(5);
    expect(await metric('shardwarden_gateway_dispatches_forwarded_total', 'type="MESSAGE_CREATE"')).toBe(5);
  });

  test('interactions and events go to their queues with the dispatch, unconfigured types are dropped', async () => {
    const { forwarder, queues, metric } = setup({ batchDelayMs: 20 });
    const interaction = { id: '900', type: 2, token: 'tok', data: { name: 'ping' } };
    const before = Date.now();
    forwarder.accept('INTERACTION_CREATE', interaction, 2, 11);
    forwarder.accept('MESSAGE_CREATE', message(901), 2, 12);
    forwarder.accept('TYPING_START', { channel_id: '1', user_id: '5' }, 2, 13);
    const after = Date.now();
    await waitForDispatches(queues.interactions, 1);
    await waitForDispatches(queues.events, 1);
    await waitForSent(forwarder);

    const job = await queues.interactions.getJob(dedupKey('INTERACTION_CREATE', interaction));
    expect(job?.id).toBe('INTERACTION_CREATE-900');
    expect(job?.name).toBe('INTERACTION_CREATE');
    expect(job?.data).toEqual({
      t: 'INTERACTION_CREATE',
      d: interaction,
      shardId: 2,
      seq: 11,
      receivedAt: expect.any(Number),
      generation: 3,
    });
    expect(job!.data.receivedAt).toBeGreaterThanOrEqual(before);
    expect(job!.data.receivedAt).toBeLessThanOrEqual(after);
    expect(job?.opts.attempts).toBe(1); // an interaction gets one chance
    const [batch] = await queues.events.getWaiting(0, 0);
    expect(batch?.name).toBe('batch');
    expect(batch?.data).toEqual({
      dispatches: [
        {
          t: 'MESSAGE_CREATE',
          d: message(901),
          shardId: 2,
          seq: 12,
          receivedAt: expect.any(Number),
          generation: 3,
          key: dedupKey('MESSAGE_CREATE', message(901)),
        },
      ],
    });
    expect(batch?.opts.attempts).toBe(5);

    expect(await metric('shardwarden_gateway_dispatches_dropped_total', 'reason="not_configured"')).toBe(1);
    expect(
      await metric(
        'shardwarden_gateway_dispatches_dropped_total',
        'type="TYPING_START",reason="not_configured"',
      ),
    ).toBe(1);
    expect(await metric('shardwarden_gateway_dispatches_received_total')).toBe(3);
  });

  test('a replayed dispatch runs once, in another batch and from another generation', async () => {
    const { forwarder, queues, runnable } = setup({ batchDelayMs: 20 });
    forwarder.accept('MESSAGE_CREATE', message(42), 0, 7);
    await waitForDispatches(queues.events, 1);
    // The same event after a resume, and again from the next generation's forwarder.
    forwarder.accept('MESSAGE_CREATE', message(42), 0, 7);
    const next = new DispatchForwarder(
      { interactions: queues.interactions, events: [queues.events] },
      {
        events: CONFIGURED,
        generation: 4,
        batchSize: 10,
        batchDelayMs: 20,
        batchesInFlight: 4,
        bufferLimit: 100,
        probeWrite: () => probe.set('forwarder-test-probe', '1'),
      },
      new GatewayMetrics(new Registry()),
      createLogger('test', 'silent'),
    );
    next.accept('MESSAGE_CREATE', message(42), 5, 3);
    expect(await forwarder.drain(5_000)).toBe(true);
    expect(await next.drain(5_000)).toBe(true);
    // Queued three times under one key; the worker's claim runs the first.
    expect((await queuedDispatches(queues.events)).map((d) => d.key)).toEqual(
      Array(3).fill('MESSAGE_CREATE-42'),
    );
    const run = await runnable();
    expect(run).toHaveLength(1);
    expect(run[0]?.generation).toBe(3);
  });

  test('message edits run once per edit (the edit timestamp holds colons)', async () => {
    const { forwarder, runnable, metric } = setup({ batchDelayMs: 20 });
    const edit = (content: string, edited: string) => ({
      id: '77',
      channel_id: '1',
      content,
      edited_timestamp: edited,
    });
    forwarder.accept('MESSAGE_UPDATE', edit('a', '2024-05-01T12:00:00.000000+00:00'), 0, 1);
    forwarder.accept('MESSAGE_UPDATE', edit('a', '2024-05-01T12:00:00.000000+00:00'), 0, 2); // replay
    forwarder.accept('MESSAGE_UPDATE', edit('b', '2024-05-01T12:00:09.500000+00:00'), 0, 3);
    forwarder.accept('MESSAGE_CREATE', message(78), 0, 4);
    expect(await forwarder.drain(5_000)).toBe(true);
    expect((await runnable()).map((d) => d.seq)).toEqual([1, 3, 4]);
    expect(await metric('shardwarden_gateway_enqueue_errors_total')).toBe(0);
  });

  test('events without an id: a genuine repeat runs again, a replay of the same session position does not', async () => {
    const { forwarder, runnable } = setup({ events: new Set(['MESSAGE_REACTION_ADD']), batchDelayMs: 20 });
    const reaction = { user_id: '2', channel_id: '1', message_id: '3', emoji: { id: null, name: 'x' } };
    forwarder.accept('MESSAGE_REACTION_ADD', reaction, 0, 10, 'sess1'); // added
    forwarder.accept('MESSAGE_REACTION_ADD', reaction, 0, 12, 'sess1'); // removed, then added again
    expect(await forwarder.drain(5_000)).toBe(true);
    forwarder.accept('MESSAGE_REACTION_ADD', reaction, 0, 12, 'sess1'); // replayed after a RESUME
    expect(await forwarder.drain(5_000)).toBe(true);
    expect((await runnable()).map((d) => d.seq)).toEqual([10, 12]);
  });

  test('safeSequence is one before the oldest buffered dispatch of the shard', async () => {
    const { forwarder } = setup({ batchSize: 1_000, batchDelayMs: 60_000 });
    forwarder.accept('MESSAGE_CREATE', message(1), 0, 5);
    forwarder.accept('MESSAGE_CREATE', message(2), 1, 10);
    forwarder.accept('MESSAGE_CREATE', message(3), 0, 6);
    forwarder.accept('TYPING_START', {}, 2, 40); // dropped, so not buffered
    expect(forwarder.safeSequence(0, 7)).toBe(4);
    expect(forwarder.safeSequence(1, 12)).toBe(9);
    expect(forwarder.safeSequence(2, 40)).toBe(40);
    expect(await forwarder.drain(5_000)).toBe(true);
    expect(forwarder.safeSequence(0, 7)).toBe(7);
  });

  test('drain enqueues what is buffered and resolves true; later dispatches are dropped as shutting_down', async () => {
    const { forwarder, queues, metric } = setup({ batchSize: 1_000, batchDelayMs: 60_000 });
    for (let i = 1; i <= 3; i++) forwarder.accept('MESSAGE_CREATE', message(i), 0, i);
    forwarder.close();
    forwarder.accept('MESSAGE_CREATE', message(4), 0, 4);
    expect(forwarder.buffered()).toBe(3);
    expect(await forwarder.drain(5_000)).toBe(true);
    expect(forwarder.buffered()).toBe(0);
    expect(await waiting(queues.events)).toBe(3);
    forwarder.accept('INTERACTION_CREATE', { id: '5' }, 0, 5);
    expect(await metric('shardwarden_gateway_dispatches_dropped_total', 'reason="shutting_down"')).toBe(2);
    expect(await forwarder.drain(1_000)).toBe(true); // nothing left: at once
    expect(await queues.interactions.getWaitingCount()).toBe(0);
  });

  test('while Redis is down dispatches wait in a bounded buffer; on return they are all enqueued in order', async () => {
    const { forwarder, queues, metric, resumes } = await withSmallBuffer();
    await redis.stop();
    try {
      acceptMessages(forwarder, 0, 1, 25);
      await pause(500);
      expect(forwarder.buffered()).toBe(20);
      expect(forwarder.safeSequence(0, 25)).toBe(0);
      // The 5 that did not fit are refused, left to Discord's replay: none is lost yet.
      expect(await metric('shardwarden_gateway_buffer_overflow_total')).toBe(5);
      expect(await metric('shardwarden_gateway_dispatches_dropped_total', 'reason="buffer_full"')).toBe(0);
      expect(forwarder.resumable(0, { sequence: 25 })).toEqual({ sequence: 20 });
      expect(resumes).toEqual([]); // no room yet
      expect(await forwarder.drain(300)).toBe(false); // the deadline passes while Redis is away
    } finally {
      await redis.start();
    }
    expect(await forwarder.drain(20_000)).toBe(true);
    // drain() closed the forwarder: no shard resumes, the replay goes to whoever resumes next.
    expect(resumes).toEqual([]);
    expect(forwarder.safeSequence(0, 25)).toBe(20);
    expect((await queuedDispatches(queues.events)).map((d) => d.seq)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(await metric('shardwarden_gateway_dispatches_forwarded_total')).toBe(20);
    expect(await metric('shardwarden_gateway_buffer_depth')).toBe(0);
    // An outage is never mistaken for a refused dispatch.
    expect(await metric('shardwarden_gateway_dispatches_dropped_total', 'reason="rejected"')).toBe(0);
  });

  test("a full buffer leaves a shard's dispatches to Discord's replay: once room is back the shard resumes, and each lands once, in order; a session not resumed counts them lost", async () => {
    const { forwarder, queues, metric, resumes } = await withSmallBuffer();
    await redis.stop();
    try {
      acceptMessages(forwarder, 0, 1, 25);
      for (let seq = 1; seq <= 3; seq++) forwarder.accept('MESSAGE_UPDATE', message(100 + seq), 1, seq, 't1');
      await pause(300);
    } finally {
      await redis.start();
    }
    await waitUntil('both shards asked to resume', async () => resumes.length === 2, { timeoutMs: 30_000 });
    expect(resumes.sort()).toEqual([0, 1]);
    // Still on the old connection: refused (room or not), so nothing overtakes the refused ones.
    forwarder.accept('MESSAGE_CREATE', message(26), 0, 26, 's1');
    expect(forwarder.resumable(0, { sequence: 26 })).toEqual({ sequence: 20 });
    expect(forwarder.safeSequence(0, 26)).toBe(20); // what the stored session says meanwhile
    // Shard 0 resumes from 20; Discord's replay may begin earlier than that (this one does).
    forwarder.shardConnected(0);
    acceptMessages(forwarder, 0, 18, 27);
    expect(forwarder.resumable(0, { sequence: 27 })).toEqual({ sequence: 27 }); // caught up
    // Shard 1 could not resume: a new session. What it refused is lost, and counted.
    forwarder.shardConnected(1);
    forwarder.accept('MESSAGE_UPDATE', message(200), 1, 1, 't2');
    expect(await forwarder.drain(20_000)).toBe(true);
    const queued = await queuedDispatches(queues.events);
    expect(queued.filter((d) => d.shardId === 0).map((d) => d.seq)).toEqual(
      Array.from({ length: 27 }, (_, i) => i + 1),
    );
    expect(queued.filter((d) => d.shardId === 1).map((d) => d.seq)).toEqual([1]);
    expect(await metric('shardwarden_gateway_buffer_overflow_total')).toBe(5 + 3 + 1);
    expect(await metric('shardwarden_gateway_dispatches_dropped_total', 'reason="buffer_full"')).toBe(3);
    expect(
      await metric(
        'shardwarden_gateway_dispatches_dropped_total',
        'type="MESSAGE_UPDATE",reason="buffer_full"',
      ),
    ).toBe(3);
  });

  test('Redis refusing writes while answering reads (maxmemory reached) is an outage, not a refusal', async () => {
    // The write probe tells an outage from a refused batch, and is asked only after a few failures
    // in a row: the assertions mean something once its answers were acted on (by its third call).
    let probes = 0;
    const probeWrite = () => ((probes += 1), probe.set('forwarder-test-probe', '1'));
    const { forwarder, queues, metric } = setup({ batchSize: 5, batchDelayMs: 20, probeWrite });
    await queues.events.waitUntilReady();
    await probe.config('SET', 'maxmemory', '1'); // noeviction: every write is refused with OOM
    try {
      for (let seq = 1; seq <= 20; seq++) forwarder.accept('MESSAGE_CREATE', message(seq), 0, seq);
      await waitUntil('the write probe asked three times', async () => probes >= 3, {
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      expect(await waiting(queues.events)).toBe(0); // reads still answer
      expect(forwarder.buffered()).toBe(20);
      expect(await metric('shardwarden_gateway_dispatches_dropped_total', 'reason="rejected"')).toBe(0);
    } finally {
      await probe.config('SET', 'maxmemory', '0');
    }
    expect(await forwarder.drain(20_000)).toBe(true);
    expect((await queuedDispatches(queues.events)).map((d) => d.seq)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
  });

  test('a dispatch the queue always refuses is dropped and counted; it does not hold back the rest', async () => {
    const { forwarder, queues, metric } = setup({ batchSize: 5, batchDelayMs: 20 });
    // Nothing from the gateway looks like this (payloads come from JSON.parse), but it is a job
    // BullMQ refuses every time (it cannot serialise a BigInt), as a bad job id once was.
    const refused = { ...message(3), nonce: 3n };
    for (let seq = 1; seq <= 5; seq++)
      forwarder.accept('MESSAGE_CREATE', seq === 3 ? refused : message(seq), 0, seq);
    for (let seq = 6; seq <= 9; seq++) forwarder.accept('MESSAGE_CREATE', message(seq), 0, seq);
    expect(await forwarder.drain(20_000)).toBe(true);
    expect((await queuedDispatches(queues.events)).map((d) => d.seq)).toEqual([1, 2, 4, 5, 6, 7, 8, 9]);
    expect(await metric('shardwarden_gateway_dispatches_dropped_total', 'reason="rejected"')).toBe(1);
    expect(await metric('shardwarden_gateway_dispatches_forwarded_total')).toBe(8);
    expect(await metric('shardwarden_gateway_enqueue_errors_total')).toBeGreaterThanOrEqual(3);
  });

  test('batches written at once: one refused ahead of others is retried alone, the others are not sent twice', async () => {
    const { forwarder, queues, metric } = setup({ batchSize: 5, batchDelayMs: 20, batchesInFlight: 3 });
    await queues.events.waitUntilReady();
    // Three full batches go out at once; the first is refused (seq 3), the two behind it are taken.
    for (let seq = 1; seq <= 15; seq++)
      forwarder.accept('MESSAGE_CREATE', seq === 3 ? { ...message(3), nonce: 3n } : message(seq), 0, seq);
    expect(forwarder.safeSequence(0, 15)).toBe(0);
    // The two batches behind it are through while it waits for its retry (back-off, then the
    // isolation, several hundred ms): the resume position must not pass it meanwhile.
    await waitUntil(
      'the batches behind the refused one forwarded',
      async () => (await metric('shardwarden_gateway_dispatches_forwarded_total')) >= 10,
      { timeoutMs: 30_000, intervalMs: 10 },
    );
    expect(forwarder.buffered()).toBe(5);
    expect(forwarder.safeSequence(0, 15)).toBe(0);
    expect(await forwarder.drain(20_000)).toBe(true);
    // The batches taken behind the refused one are queued ahead of its retry (no order is
    // promised across batches); the retry sends what it can of it one at a time.
    expect((await queuedDispatches(queues.events)).map((d) => d.seq)).toEqual([
      6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 2, 4, 5,
    ]);
    expect(await metric('shardwarden_gateway_dispatches_forwarded_total')).toBe(14);
    expect(await metric('shardwarden_gateway_dispatches_dropped_total', 'reason="rejected"')).toBe(1);
    expect(forwarder.safeSequence(0, 15)).toBe(15);
  });
  test('with partitions, each batches on its own: a burst over three partitions is one full job in each', async () => {
    const { forwarder, partitionQueues, metric } = setup({
      partitions: 3,
      batchSize: 10,
      batchDelayMs: 60_000,
    });
    // A guild in each partition, their messages interleaved as a shard receives them.
    const guilds = guildPerPartition(3);
    for (let seq = 1; seq <= 30; seq++)
      forwarder.accept('MESSAGE_CREATE', inGuild(seq, guilds[seq % 3]!), 0, seq);
    // The delay is a minute: only full batches can be written here.
    for (const q of partitionQueues) await waitForDispatches(q, 10);
    await waitForSent(forwarder);
    for (const [partition, q] of partitionQueues.entries()) {
      const jobs = await q.getWaiting();
      expect(jobs).toHaveLength(1);
      // The partition's guild's messages, in the order received.
      const first = partition === 0 ? 3 : partition;
      expect(jobs[0]!.data.dispatches.map((d: { seq: number }) => d.seq)).toEqual(
        Array.from({ length: 10 }, (_, i) => first + 3 * i),
      );
    }
    expect(await metric('shardwarden_gateway_batch_size_count')).toBe(3);
    expect(await metric('shardwarden_gateway_batch_size_sum')).toBe(30);

    // A partition's partial batch waits for its own window; the resume position waits for it.
    forwarder.accept('MESSAGE_CREATE', inGuild(31, guilds[1]!), 0, 31);
    expect(forwarder.safeSequence(0, 31)).toBe(30);
    expect(await forwarder.drain(5_000)).toBe(true);
    expect(await waiting(partitionQueues[1]!)).toBe(11);
    expect(forwarder.safeSequence(0, 31)).toBe(31);
  });
  test('with partitions, one whose Redis refuses writes holds back only its own dispatches, and the resume position stays before its oldest', async () => {
    // Partition 1 on a Redis of its own, as on a Redis Cluster master, refusing every write.
    const refusing = await startRedis();
    const client = new Redis(refusing.url, { maxRetriesPerRequest: null });
    client.on('error', () => undefined);
    let refusingQueue: Queue | undefined;
    try {
      await client.config('SET', 'maxmemory-policy', 'noeviction');
      await client.config('SET', 'maxmemory', '1');
      const { forwarder, partitionQueues, metric } = setup({
        partitions: 3,
        urlOf: (partition) => (partition === 1 ? refusing.url : redis.url),
        probeWrite: (partition) => (partition === 1 ? client : probe).set('forwarder-test-probe', '1'),
      });
      refusingQueue = partitionQueues[1];
      const guilds = guildPerPartition(3);
      // Partition 0's batch first, then the three partitions interleaved: partition 1's oldest is seq 13.
      for (let seq = 1; seq <= 10; seq++)
        forwarder.accept('MESSAGE_CREATE', inGuild(seq, guilds[0]!), 0, seq);
      for (let seq = 11; seq <= 40; seq++)
        forwarder.accept('MESSAGE_CREATE', inGuild(seq, guilds[seq % 3]!), 0, seq);
      // The other partitions keep writing while partition 1's lane retries and probes its own Redis.
      await waitForDispatches(partitionQueues[0]!, 20);
      await waitForDispatches(partitionQueues[2]!, 10);
      await waitUntil(
        'partition 1 refused more than once',
        async () => (await metric('shardwarden_gateway_enqueue_errors_total')) >= 3,
        { timeoutMs: 30_000, intervalMs: 20 },
      );
      expect(forwarder.buffered()).toBe(10);
      // Seqs up to 40 are in other partitions' queues, yet a resume must replay from seq 13.
      expect(forwarder.safeSequence(0, 40)).toBe(12);
      expect(await metric('shardwarden_gateway_dispatches_dropped_total')).toBe(0);

      await client.config('SET', 'maxmemory', '0');
      expect(await forwarder.drain(30_000)).toBe(true);
      expect((await queuedDispatches(partitionQueues[1]!)).map((d) => d.seq)).toEqual(
        Array.from({ length: 10 }, (_, i) => 13 + 3 * i),
      );
      expect(await waiting(partitionQueues[0]!)).toBe(20);
      expect(await waiting(partitionQueues[2]!)).toBe(10);
      expect(await metric('shardwarden_gateway_dispatches_forwarded_total')).toBe(40);
      expect(forwarder.safeSequence(0, 40)).toBe(40);
    } finally {
      client.disconnect();
      await refusingQueue?.close();
      await refusing.close();
    }
  });
  test("with batch bodies: each batch is a body in its partition's slot and a job that refers to it; the format can change between batches", async () => {
    let bodies = true;
    const { forwarder, partitionQueues } = setup({
      partitions: 2,
      batchSize: 5,
      batchBodies: { redis: probe, enabled: () => bodies, minDispatches: 1 },
    });
    const guilds = guildPerPartition(2);
    for (let seq = 1; seq <= 10; seq++) forwarder.accept('MESSAGE_CREATE', inGuild(seq, guilds[0]!), 0, seq);
    await waitForDispatches(partitionQueues[0]!, 10);
    bodies = false;
    for (let seq = 11; seq <= 15; seq++) forwarder.accept('MESSAGE_CREATE', inGuild(seq, guilds[0]!), 0, seq);
    for (let seq = 16; seq <= 20; seq++) forwarder.accept('MESSAGE_CREATE', inGuild(seq, guilds[1]!), 0, seq);
    await waitForDispatches(partitionQueues[0]!, 15);
    await waitForDispatches(partitionQueues[1]!, 5);
    await waitForSent(forwarder);

    const jobs = await partitionQueues[0]!.getJobs(['wait'], 0, -1, true);
    expect(jobs.map((j) => Object.keys(j.data as object).sort())).toEqual([
      ['body', 'receivedAt', 'size'],
      ['body', 'receivedAt', 'size'],
      ['dispatches'],
    ]);
    for (const job of jobs.slice(0, 2)) {
      const { body, size } = job.data as { body: string; size: number };
      // In the partition's hash slot (its queue's prefix), kept long enough for any failed job.
      expect(body.startsWith(`${partitionQueues[0]!.opts.prefix}:batch-body:`)).toBe(true);
      expect(size).toBe(5);
      expect(await probe.ttl(body)).toBeGreaterThan(BATCH_BODY_TTL_SECONDS - 60);
    }
    expect((await queuedDispatches(partitionQueues[0]!)).map((d) => d.seq)).toEqual(
      Array.from({ length: 15 }, (_, i) => i + 1),
    );
    expect((await queuedDispatches(partitionQueues[1]!)).map((d) => d.seq)).toEqual([16, 17, 18, 19, 20]);
  });
});

test('with batch bodies allowed, a batch of fewer dispatches than the minimum stays inline', async () => {
  const { forwarder, partitionQueues } = setup({
    batchSize: 5,
    batchBodies: { redis: probe, enabled: () => true, minDispatches: 5 },
  });
  for (let seq = 1; seq <= 7; seq++) forwarder.accept('MESSAGE_CREATE', inGuild(seq, '1'), 0, seq);
  await waitForDispatches(partitionQueues[0]!, 7);
  await waitForSent(forwarder);
  const jobs = await partitionQueues[0]!.getJobs(['wait'], 0, -1, true);
  expect(jobs.map((j) => Object.keys(j.data as object).sort())).toEqual([
    ['body', 'receivedAt', 'size'],
    ['dispatches'],
  ]);
  expect((await queuedDispatches(partitionQueues[0]!)).map((d) => d.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
});

describe('BatchFormatWatch', () => {
  test("bodies while the workers' flag is set; inline before the first read, without the flag, and when the read fails", async () => {
    const botPrefix = queuePrefix({ namespace: 'default', name: 'formatbot' });
    const client = new Redis(redis.url, { enableOfflineQueue: false });
    try {
      await waitUntil('connected', async () => client.status === 'ready');
      const watch = new BatchFormatWatch({ redis: client, botPrefix, log: createLogger('test', 'silent') });
      expect(watch.batchBodies()).toBe(false); // inline until the first read
      await watch.look();
      expect(watch.batchBodies()).toBe(false); // no worker of this release has looked
      await probe.set(batchBodiesFlagKey(botPrefix), '1', 'EX', 60);
      await watch.look();
      expect(watch.batchBodies()).toBe(true);
      await probe.del(batchBodiesFlagKey(botPrefix));
      await watch.look();
      expect(watch.batchBodies()).toBe(false);
      await probe.set(batchBodiesFlagKey(botPrefix), '1', 'EX', 60);
      await watch.look();
      expect(watch.batchBodies()).toBe(true);
      client.disconnect(); // a read that fails: inline, the safe format
      await watch.look();
      expect(watch.batchBodies()).toBe(false);
    } finally {
      client.disconnect();
      await probe.del(batchBodiesFlagKey(botPrefix));
    }
  });
});
