// Batched events: what the forwarder writes for a batch, what a job carries, how a claimed batch
// is planned (pure), and the claim and a batch's run against a real Redis: keys already done are
// skipped, a retried batch runs only what failed (and what waited behind it in its guild).
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { bulkJobs, withBody, type Pending } from '../../bot/gateway/forwarding/job-batches.js';
import {
  batchBodiesFlagKey,
  consumerClientName,
  orderKey,
  queuePrefix,
  QUEUES,
  type BatchedDispatch,
} from '../../bot/queues/queue-names.js';
import { defineBotModule, type WorkerServices } from '../../bot/worker/handlers/bot-module.js';
import { HandlerRegistry } from '../../bot/worker/handlers/handler-registry.js';
import { WorkerMetrics } from '../../bot/worker/metrics.js';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import { isRefusal } from '../../bot/queues/connected-consumers.js';
import {
  oldWorkerClientName,
  PerKeyMarksWatch,
  CLAIMS_WORKER_NAME,
  inlineOnlyConsumerNames,
} from '../../bot/worker/processing/claim-format.js';
import {
  claimStates,
  DispatchClaims,
  type ClaimOwner,
  type Claims,
} from '../../bot/worker/processing/dispatch-claims.js';
import { PerKeyClaims } from './per-key-claims.js';
import {
  BatchIntake,
  batchError,
  batchParallelism,
  bodyKeyOf,
  dispatchesOf,
  loadDispatches,
  planBatch,
} from '../../bot/worker/processing/event-batch.js';
import {
  BatchFailure,
  EventBatchRunner,
  Slots,
  type BatchAttempt,
} from '../../bot/worker/processing/event-batch-runner.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';
import { metricSum } from '../gateway/harness.js';

function dispatch(key: string, d: Record<string, unknown> = {}, t = 'MESSAGE_CREATE'): BatchedDispatch {
  return { t, d, shardId: 0, seq: 1, receivedAt: 1_000, generation: 1, key };
}
const inGuild = (key: string, guild: string) => dispatch(key, { id: key, guild_id: guild });
/** Attempt `token` at job `job` (no lock key: the lock counts as gone). */
const owner = (job: string, token = 't1', lockKey?: string): ClaimOwner => ({
  job: `${job}/`,
  token,
  ...(lockKey ? { lockKey } : {}),
});
const attempt = (job: string, token = 't1', lastAttempt = false): BatchAttempt => ({
  owner: owner(job, token),
  lastAttempt,
});

describe('a batch as the forwarder writes it', () => {
  test('the events of a batch are one job, in order; each interaction is a job keyed by its dispatch', () => {
    const batch: Pending[] = [
      { queue: 'events', dispatch: inGuild('MESSAGE_CREATE-1', '7') },
      { queue: 'interactions', dispatch: dispatch('INTERACTION_CREATE-2', {}, 'INTERACTION_CREATE') },
      { queue: 'events', dispatch: inGuild('MESSAGE_CREATE-3', '8') },
    ];
    const jobs = bulkJobs(batch, 60);
    expect(jobs.events).toEqual([
      {
        name: 'batch',
        data: { dispatches: [batch[0]!.dispatch, batch[2]!.dispatch] },
        opts: expect.objectContaining({ attempts: 5, removeOnComplete: true }),
      },
    ]);
    const { key, ...single } = batch[1]!.dispatch;
    expect(jobs.interactions).toEqual([
      {
        name: 'INTERACTION_CREATE',
        data: single, // as before batching: what every worker release reads
        opts: expect.objectContaining({ jobId: key, attempts: 1, removeOnComplete: { age: 60 } }),
      },
    ]);
    expect(bulkJobs([batch[0]!])).not.toHaveProperty('interactions');
    expect(bulkJobs([batch[1]!])).not.toHaveProperty('events');
  });

  test('as a body: the job carries the body key, its size and the first dispatch received; the body the dispatches', () => {
    const ds = [inGuild('MESSAGE_CREATE-1', '7'), { ...inGuild('MESSAGE_CREATE-2', '8'), receivedAt: 2_000 }];
    const [job] = bulkJobs(ds.map((dispatch) => ({ queue: 'events' as const, dispatch }))).events!;
    const { job: ref, body } = withBody(job!, 'p:batch-body:1');
    expect(ref).toEqual({ ...job, data: { body: 'p:batch-body:1', size: 2, receivedAt: 1_000 } });
    expect(JSON.parse(body)).toEqual(ds);
    expect(dispatchesOf({ id: '9', data: ref.data }, body)).toEqual(ds);
    expect(() => withBody({ ...job!, data: { dispatches: [] } }, 'k')).toThrow('not a batch job');
  });
});

describe('what a job carries', () => {
  test('a batch, or the single dispatch of a gateway before batching (its job id is its key)', () => {
    const d = inGuild('MESSAGE_CREATE-1', '7');
    expect(dispatchesOf({ id: '12', data: { dispatches: [d] } })).toEqual([d]);
    const { key, ...single } = d;
    expect(dispatchesOf({ id: key, data: single })).toEqual([d]);
    expect(() => dispatchesOf({ id: '14', data: { dispatches: [d, { t: 'MESSAGE_CREATE' }] } })).toThrow(
      'job 14: dispatches[1] has no string "key" and "t"',
    );
    expect(() => dispatchesOf({ id: '13', data: { hello: 1 } })).toThrow(
      'job 13 carries neither a batch of dispatches nor a dispatch',
    );
  });

  test("a batch body's job: the body parsed and checked as an inline batch; a body gone or not JSON named", () => {
    const d = inGuild('MESSAGE_CREATE-1', '7');
    const data = { body: 'p:batch-body:x', size: 1, receivedAt: 1 };
    expect(bodyKeyOf({ id: '1', data })).toBe('p:batch-body:x');
    expect(bodyKeyOf({ id: '1', data: { dispatches: [d] } })).toBeUndefined();
    expect(dispatchesOf({ id: '1', data }, JSON.stringify([d]))).toEqual([d]);
    expect(() => dispatchesOf({ id: '2', data }, null)).toThrow(
      'job 2: its batch body p:batch-body:x is gone (a body is kept 14 days after its enqueue)',
    );
    expect(() => dispatchesOf({ id: '3', data }, '{')).toThrow(
      'job 3: its batch body p:batch-body:x is not JSON',
    );
    for (const wrong of ['null', '{}', '[]'])
      expect(() => dispatchesOf({ id: '5', data }, wrong)).toThrow(
        'job 5: its batch body p:batch-body:x is not a list of dispatches',
      );
    expect(() => dispatchesOf({ id: '4', data }, JSON.stringify([{ t: 'X' }]))).toThrow(
      'job 4: dispatches[0] has no string "key" and "t"',
    );
  });

  test("a body gone because another attempt of the job took what was left inline: the job's data as stored now is read", async () => {
    const d = inGuild('MESSAGE_CREATE-1', '7');
    const job = { id: '1', data: { body: 'p:batch-body:x', size: 2, receivedAt: 1 } };
    const gone = { get: async () => null };
    expect(await loadDispatches(gone, job, async () => ({ id: '1', data: { dispatches: [d] } }))).toEqual([
      d,
    ]);
    await expect(loadDispatches(gone, job, async () => job)).rejects.toThrow('is gone');
    await expect(loadDispatches(gone, job, async () => undefined)).rejects.toThrow('is gone');
    expect(await loadDispatches({ get: async () => JSON.stringify([d]) }, job)).toEqual([d]);
  });

  test('the consumers that read only inline batches, by client name, under each partition', () => {
    const names = inlineOnlyConsumerNames(['p0', 'p1']);
    const b64 = Buffer.from(QUEUES.events).toString('base64');
    expect([...names].sort()).toEqual(
      [`p0:${b64}`, `p0:${b64}:w:bucketed-claims`, `p1:${b64}`, `p1:${b64}:w:bucketed-claims`].sort(),
    );
    expect(names.has(consumerClientName('p0', QUEUES.events, CLAIMS_WORKER_NAME))).toBe(false);
  });

  test('dispatches are ordered by guild, else by channel', () => {
    expect(orderKey({ t: 'MESSAGE_CREATE', d: { guild_id: '7', channel_id: '1' } })).toBe('guild:7');
    expect(orderKey({ t: 'GUILD_CREATE', d: { id: '7' } })).toBe('guild:7');
    expect(orderKey({ t: 'MESSAGE_CREATE', d: { channel_id: '1' } })).toBe('channel:1');
    expect(orderKey({ t: 'USER_UPDATE', d: { id: '5' } })).toBe('other');
  });
});

describe('planning a claimed batch', () => {
  test('done and busy keys are skipped, a second copy in the batch too; guilds keep their order', () => {
    const ds = [
      inGuild('a', '1'),
      inGuild('b', '2'),
      inGuild('c', '1'),
      inGuild('a', '1'), // a replay in the same batch
      inGuild('d', '2'),
      inGuild('e', '1'),
    ];
    const plan = planBatch(ds, ['claimed', 'claimed', 'done', 'claimed', 'busy', 'claimed']);
    expect(plan.groups.map((g) => g.map((d) => d.key))).toEqual([['a', 'e'], ['b']]);
    expect(plan.skipped.map((d) => d.key)).toEqual(['c', 'a', 'd']);
    expect(() => planBatch(ds, ['claimed'])).toThrow('1 claim states for 6 dispatches');
  });

  test('the claim script answer is read as states; anything else is an error', () => {
    expect(claimStates([0, 1, 2], 3)).toEqual(['claimed', 'done', 'busy']);
    expect(() => claimStates([0], 2)).toThrow('claim script answered [0] for 2 keys');
    expect(() => claimStates([3], 1)).toThrow('unknown state 3');
  });

  test("a batch fails with its single failure's own error, else with a summary", () => {
    const boom = new Error('boom');
    expect(batchError({ done: [], failed: [], held: [] })).toBeUndefined();
    expect(batchError({ done: [], failed: [{ dispatch: inGuild('a', '1'), error: boom }], held: [] })).toBe(
      boom,
    );
    expect(
      batchError({
        done: [],
        failed: [{ dispatch: inGuild('a', '1'), error: boom }],
        held: [inGuild('b', '1')],
      })?.message,
    ).toBe('1 dispatch(es) failed (1 more held behind them); first: MESSAGE_CREATE a: boom');
  });
});

describe('how many batches a worker holds', () => {
  test('as many as its slots while batches are small, one when a batch fills them', () => {
    const intake = new BatchIntake(50);
    expect(intake.jobs()).toBe(50);
    for (let i = 0; i < 5; i++) intake.observe(1);
    expect(intake.jobs()).toBe(50);
    let held = 0;
    for (let i = 0; i < 40; i++) held = intake.observe(100);
    expect(held).toBe(1);
    for (let i = 0; i < 40; i++) held = intake.observe(10);
    expect(held).toBe(5);
    expect(new BatchIntake(1).observe(0)).toBe(1);
  });

  test("a batch's parallelism is its guilds, not its size: a skewed stream's full batches are held several at once", () => {
    const skewed = Array.from({ length: 100 }, (_, i) => inGuild(`s${i}`, i % 2 === 0 ? 'A' : 'B'));
    expect(batchParallelism(skewed)).toBe(2);
    const intake = new BatchIntake(10);
    let held = 0;
    for (let i = 0; i < 40; i++) held = intake.observe(batchParallelism(skewed));
    expect(held).toBe(5); // 5 batches x 2 guilds fill the 10 slots
  });
});

test('only a refusal of CLIENT LIST (ACL, renamed) keeps the per-key marks; a timeout or a failover leaves the format as it is', () => {
  expect(isRefusal(new Error("NOPERM User bot has no permissions to run the 'client|list' command"))).toBe(
    true,
  );
  expect(isRefusal(new Error("ERR unknown command 'CLIENT', with args beginning with: 'LIST'"))).toBe(true);
  expect(isRefusal(new Error("ERR unknown subcommand 'LIST'"))).toBe(true);
  expect(isRefusal(new Error('Command timed out'))).toBe(false);
  expect(isRefusal(new Error('READONLY You can not write against a read only replica.'))).toBe(false);
  expect(isRefusal(new Error('Connection is closed.'))).toBe(false);
});

describe('claims and batches against a real Redis', () => {
  let server: RedisServer;
  let redis: Redis;
  const prefix = queuePrefix({ namespace: 'ns', name: 'claims' });
  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.close();
  });

  test('one claim takes free keys, reports done ones and those of another job; a later attempt of its job takes them back', async () => {
    const claims = new DispatchClaims(redis, prefix, 60);
    expect(await claims.claim(owner('job/1'), ['k1', 'k2', 'k3'])).toEqual(['claimed', 'claimed', 'claimed']);
    await claims.finish(owner('job/1'), ['k1'], ['k3']);
    expect(await claims.claim(owner('job/2'), ['k1', 'k2', 'k3', 'k4'])).toEqual([
      'done',
      'busy',
      'claimed',
      'claimed',
    ]);
    expect(await claims.claim(owner('job/1', 't2'), ['k2'])).toEqual(['claimed']); // a retry of job 1
    expect(await claims.markOf('k2')).toBe('job/1/t2');
    expect(await claims.markOf('k1')).toBe('done');
    // Marks are fields of one hash per window-long bucket, in the bot's hash slot; the upkeep
    // sets its backstop expiry a margin after the last moment it is read (two windows after its start).
    const [bucket, ...others] = await redis.keys(`${prefix}:claims:*`);
    expect(others).toEqual([]);
    expect(await redis.hlen(bucket!)).toBe(4);
    expect(await redis.ttl(bucket!)).toBe(-1);
    const n = Number(bucket!.split(':').pop());
    // As the current bucket (b = n) or the previous one (b = n + 1), the same moment.
    await claims.upkeep(30);
    expect(await redis.call('EXPIRETIME', bucket!)).toBe((n + 2) * 60 + 30);
    // No key per dispatch (no worker of the release with per-key claims is connected).
    expect(await redis.keys(`${prefix}:dispatch:*`)).toEqual([]);
    // Giving up or finishing a claim another job holds leaves it alone.
    await claims.finish(owner('job/1'), ['k4'], []);
    await claims.finish(owner('job/1'), [], ['k4']);
    expect(await claims.markOf('k4')).toBe('job/2/t1');
  });

  test('a mark is read from the current and the previous bucket, not an older one; a done mark follows its claim across buckets', async () => {
    const window = 3600;
    const claims = new DispatchClaims(redis, `${prefix}-buckets`, window);
    const [seconds] = await redis.time();
    const bucket = (ago: number) => `${prefix}-buckets:claims:${Math.floor(Number(seconds) / window) - ago}`;
    // Written an hour or more ago (the previous bucket) and two or more hours ago.
    await redis.hset(bucket(1), 'b-done', 'done', 'b-held', 'job/8/t1', 'b-mine', 'job/9/t1');
    await redis.hset(bucket(2), 'b-old', 'done');
    expect(await claims.claim(owner('job/9'), ['b-done', 'b-held', 'b-mine', 'b-old'])).toEqual([
      'done',
      'busy',
      'claimed',
      'claimed',
    ]);
    // The claim taken over is written in the current bucket; its done mark too, and it wins.
    expect(await redis.hget(bucket(0), 'b-mine')).toBe('job/9/t1');
    await claims.finish(owner('job/9'), ['b-mine'], []);
    expect(await claims.markOf('b-mine')).toBe('done');
    // Given up where it is: the previous bucket's claim of job 8 is deleted by job 8 alone.
    await claims.finish(owner('job/9'), [], ['b-held']);
    expect(await claims.markOf('b-held')).toBe('job/8/t1');
    await claims.finish(owner('job/8'), [], ['b-held']);
    expect(await claims.markOf('b-held')).toBeNull();
  });

  test('the upkeep unlinks the buckets no lookup reads (background free), keeps the two read, and flags a non-empty single-dispatch queue', async () => {
    const window = 3600;
    const base = `${prefix}-upkeep`;
    const claims = new DispatchClaims(redis, base, window);
    // Not within seconds of a bucket's end, so the buckets written below are the ones it sees.
    await waitUntil('away from a bucket boundary', async () => {
      const [seconds] = await redis.time();
      const into = Number(seconds) % window;
      return into > 5 && into < window - 10;
    });
    const [seconds] = await redis.time();
    const b = Math.floor(Number(seconds) / window);
    for (const ago of [0, 1, 2, 3, 4]) await redis.hset(`${base}:claims:${b - ago}`, 'k', 'done');
    const calls = async (command: string) =>
      Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await redis.info('commandstats'))?.[1] ?? 0);
    const [unlinks, dels] = [await calls('unlink'), await calls('del')];
    expect(await claims.upkeep(90, `${base}:events:`)).toBe(b);
    expect(
      await redis.exists(`${base}:claims:${b - 2}`, `${base}:claims:${b - 3}`, `${base}:claims:${b - 4}`),
    ).toBe(0);
    expect(await redis.call('EXPIRETIME', `${base}:claims:${b}`)).toBe((b + 2) * window + 90);
    expect(await redis.call('EXPIRETIME', `${base}:claims:${b - 1}`)).toBe((b + 1) * window + 90);
    // By UNLINK (freed in the background), not DEL or an expiry: small values are freed inline
    // either way, so the command is what is checked.
    expect(await calls('unlink')).toBe(unlinks + 1);
    expect(await calls('del')).toBe(dels);
    // The single-dispatch queue is empty: no flag; once it holds a job, flagged for a window.
    expect(await redis.exists(`${base}:claims:singles`)).toBe(0);
    await redis.rpush(`${base}:events:wait`, 'x');
    await claims.upkeep(90, `${base}:events:`);
    expect(await redis.ttl(`${base}:claims:singles`)).toBeGreaterThan(window - 60);
  });

  test('more keys at once than Lua unpacks in one call (a reader claiming a whole stream) are claimed and finished', async () => {
    const claims = new DispatchClaims(redis, `${prefix}-many`, 60);
    const keys = Array.from({ length: 9_000 }, (_, i) => `many-${i}`);
    const lock = `${prefix}-many:event-batches:1:lock`;
    await redis.set(lock, 't1');
    expect(new Set(await claims.claim(owner('event-batches/1', 't1', lock), keys))).toEqual(
      new Set(['claimed']),
    );
    await claims.finish(owner('event-batches/1', 't1', lock), keys.slice(0, 8_500), keys.slice(8_500));
    expect(await claims.markOf('many-8499')).toBe('done');
    expect(await claims.markOf('many-8500')).toBeNull();
    await claims.finish(owner('event-batches/1', 't0'), keys.slice(0, 8_500), []); // the careful path
    expect(new Set(await claims.claim(owner('event-batches/2'), keys.slice(0, 8_500)))).toEqual(
      new Set(['done']),
    );
  });

  test('a stalled attempt whose job another worker took over: the new attempt claims, the old one cannot undo it', async () => {
    const claims = new DispatchClaims(redis, prefix, 60);
    const lock = `${prefix}:event-batches:9:lock`;
    await redis.set(lock, 'A'); // worker A holds job 9
    expect(await claims.claim(owner('event-batches/9', 'A', lock), ['s1', 's2'])).toEqual([
      'claimed',
      'claimed',
    ]);
    // While A's lock holds, no other attempt of job 9 takes A's claims.
    expect(await claims.claim(owner('event-batches/9', 'B', lock), ['s1'])).toEqual(['busy']);
    // A's lock lapsed; BullMQ gave the job to B (its lock now holds B's token).
    await redis.set(lock, 'B');
    expect(await claims.claim(owner('event-batches/9', 'B', lock), ['s1', 's2'])).toEqual([
      'claimed',
      'claimed',
    ]);
    // A, still alive, ends: it neither gives up nor overwrites what B now holds.
    await claims.finish(owner('event-batches/9', 'A', lock), ['s1'], ['s2']);
    expect(await claims.markOf('s1')).toBe('event-batches/9/B');
    expect(await claims.markOf('s2')).toBe('event-batches/9/B');
    // B, whose lock holds, finishes (written without reading the marks first).
    await claims.finish(owner('event-batches/9', 'B', lock), ['s1'], ['s2']);
    expect(await claims.markOf('s1')).toBe('done');
    expect(await claims.markOf('s2')).toBeNull();
  });

  test('a batch with some dispatches done runs the rest; its retry after a failure runs only the failed one and what its guild held', async () => {
    const runs: string[] = [];
    const failing = new Set(['m3']);
    const module = defineBotModule({
      name: 'recorder',
      events: [
        {
          type: 'MESSAGE_CREATE',
          async handle(event) {
            const { id } = event.payload as { id: string };
            if (failing.has(id)) throw new Error(`handler refused ${id}`);
            runs.push(id);
          },
        },
      ],
    });
    const registry = new Registry();
    const claims = new DispatchClaims(redis, `${prefix}-run`, 60);
    const runner = new EventBatchRunner({
      claims,
      registry: new HandlerRegistry([module]),
      services: {} as WorkerServices,
      metrics: new WorkerMetrics(registry),
      slots: new Slots(4),
      handlerTimeoutMs: 60_000,
    });
    const metric = async (match: string) =>
      metricSum(await registry.metrics(), 'shardwarden_worker_dispatches_total', match);
    // Done before this batch (an earlier job ran it, e.g. the other generation's copy).
    await claims.claim(owner('events/0'), ['m1']);
    await claims.finish(owner('events/0'), ['m1'], []);
    const batch = ['m1', 'm2', 'm3', 'm4', 'm5'].map((id, i) => inGuild(id, i % 2 === 0 ? 'A' : 'B'));
    // Guild A: m1 (done), m3 (fails), m5 (held behind m3); guild B: m2, m4.

    const failure = await runner.run(attempt('event-batches/7'), batch).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(BatchFailure);
    expect((failure as Error).message).toBe(
      '1 dispatch(es) failed (1 more held behind them); first: MESSAGE_CREATE m3: handler refused m3',
    );
    // What the job keeps for its retries and the failed set: the failed one and what it held.
    expect((failure as BatchFailure).remaining.map((d) => d.key)).toEqual(['m3', 'm5']);
    expect(runs.sort()).toEqual(['m2', 'm4']);
    expect(await metric('outcome="skipped"')).toBe(1);
    expect(await metric('outcome="completed"')).toBe(2);
    expect(await metric('outcome="failed"')).toBe(1);
    expect(await metric('outcome="held"')).toBe(1);

    // BullMQ retries the job (another attempt), the whole batch even if its data were not cut.
    failing.clear();
    runs.length = 0;
    await runner.run(attempt('event-batches/7', 't2'), batch);
    expect(runs).toEqual(['m3', 'm5']); // in the guild's order
    expect(await metric('outcome="skipped"')).toBe(1 + 3);

    // A copy of the batch (a replay) runs nothing.
    runs.length = 0;
    await runner.run(attempt('event-batches/8'), batch);
    expect(runs).toEqual([]);
    for (const id of ['m1', 'm2', 'm3', 'm4', 'm5']) expect(await claims.markOf(id)).toBe('done');
  });

  test("during an upgrade, a dispatch an old gateway queued as its own job and a new gateway's batch replays runs once", async () => {
    const runs: string[] = [];
    const upgradeClaims = new DispatchClaims(redis, `${prefix}-upgrade`, 60);
    const runner = new EventBatchRunner({
      claims: upgradeClaims,
      registry: new HandlerRegistry([
        defineBotModule({
          name: 'recorder',
          events: [
            {
              type: 'MESSAGE_CREATE',
              async handle(event) {
                runs.push((event.payload as { id: string }).id);
              },
            },
          ],
        }),
      ]),
      services: {} as WorkerServices,
      metrics: new WorkerMetrics(new Registry()),
      slots: new Slots(4),
      handlerTimeoutMs: 60_000,
    });
    const { key, ...single } = inGuild('MESSAGE_CREATE-5', '1');
    await runner.run(attempt(`events/${key}`), dispatchesOf({ id: key, data: single }));
    await runner.run(attempt('event-batches/1'), [
      inGuild('MESSAGE_CREATE-5', '1'),
      inGuild('MESSAGE_CREATE-6', '1'),
    ]);
    expect(runs).toEqual(['MESSAGE_CREATE-5', 'MESSAGE_CREATE-6']);

    // A worker of the earlier release ran an old gateway's job (it records no claim; BullMQ
    // keeps the completed job an hour): a new gateway's batch replaying it skips it.
    const upgrade = `${prefix}-upgrade`;
    await redis.hset(`${upgrade}:events:MESSAGE_CREATE-7`, 'name', 'MESSAGE_CREATE', 'finishedOn', '1');
    await redis.zadd(`${upgrade}:events:completed`, 1, 'MESSAGE_CREATE-7');
    // The claims look the job up only while the upkeep flagged the queue as holding jobs.
    await upgradeClaims.upkeep(30, `${upgrade}:events:`);
    await upgradeClaims.readMode();
    runs.length = 0;
    await runner.run(
      { owner: { ...owner('event-batches/2'), singleJobPrefix: `${upgrade}:events:` }, lastAttempt: false },
      [inGuild('MESSAGE_CREATE-7', '1'), inGuild('MESSAGE_CREATE-8', '1')],
    );
    expect(runs).toEqual(['MESSAGE_CREATE-8']);
  });

  /** A runner whose MESSAGE_CREATE handler calls `handle` with the dispatch's id. */
  const runnerFor = (
    claimsPrefix: string,
    handle: (id: string) => Promise<void>,
    options: { handlerTimeoutMs?: number; registry?: Registry; claims?: Claims } = {},
  ) =>
    new EventBatchRunner({
      claims: options.claims ?? new DispatchClaims(redis, claimsPrefix, 60),
      registry: new HandlerRegistry([
        defineBotModule({
          name: 'recorder',
          events: [
            { type: 'MESSAGE_CREATE', handle: async (event) => handle((event.payload as { id: string }).id) },
          ],
        }),
      ]),
      services: {} as WorkerServices,
      metrics: new WorkerMetrics(options.registry ?? new Registry()),
      slots: new Slots(4),
      handlerTimeoutMs: options.handlerTimeoutMs ?? 60_000,
    });

  test('each dispatch is marked done as it finishes, while the rest of its batch still runs', async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const marks = new DispatchClaims(redis, `${prefix}-marks`, 60);
    const runner = runnerFor(`${prefix}-marks`, async (id) => {
      if (id === 'p9') await slow;
    });
    const batch = [inGuild('p1', 'A'), inGuild('p2', 'B'), inGuild('p9', 'C'), inGuild('p3', 'A')];
    const running = runner.run(attempt('event-batches/20'), batch);
    // A crash now would re-run only p9.
    await waitUntil('p1, p2 and p3 marked done before the batch ends', async () => {
      const v = await Promise.all(['p1', 'p2', 'p3'].map((k) => marks.markOf(k)));
      return v.every((x) => x === 'done');
    });
    expect(await marks.markOf('p9')).toBe('event-batches/20/t1');
    release();
    await running;
    expect(await marks.markOf('p9')).toBe('done');
  });

  test('a handler that does not finish in time fails its dispatch (the batch is retried)', async () => {
    const runner = runnerFor(
      `${prefix}-timeout`,
      (id) => (id === 'h1' ? new Promise(() => undefined) : Promise.resolve()),
      {
        handlerTimeoutMs: 200,
      },
    );
    const failure = await runner
      .run(attempt('event-batches/30'), [inGuild('h1', 'A'), inGuild('h2', 'B')])
      .catch((e: unknown) => e);
    expect((failure as Error).message).toBe('MESSAGE_CREATE h1: handlers did not finish within 200 ms');
    expect((failure as BatchFailure).remaining.map((d) => d.key)).toEqual(['h1']);
    const marks = new DispatchClaims(redis, `${prefix}-timeout`, 60);
    expect(await marks.markOf('h2')).toBe('done');
    expect(await marks.markOf('h1')).toBeNull(); // given up for the retry
  });

  test('on the last attempt, what a poison dispatch held behind it in its guild runs anyway', async () => {
    const runs: string[] = [];
    const runner = runnerFor(`${prefix}-poison`, async (id) => {
      if (id === 'x1') throw new Error('poison');
      runs.push(id);
    });
    const batch = [inGuild('x1', 'A'), inGuild('x2', 'A'), inGuild('x3', 'A')];
    await expect(runner.run(attempt('event-batches/40', 't1'), batch)).rejects.toThrow('held behind them');
    expect(runs).toEqual([]);
    const failure = await runner.run(attempt('event-batches/40', 't2', true), batch).catch((e: unknown) => e);
    expect(runs).toEqual(['x2', 'x3']);
    // Only the poison is left in the failed set.
    expect((failure as BatchFailure).remaining.map((d) => d.key)).toEqual(['x1']);
  });
  test('the batch bodies flag: set while no consumer that reads only inline batches is connected, deleted as soon as one is, and where CLIENT LIST is refused', async () => {
    const bot = `${prefix}-bodies`;
    const prefixes = [bot, `${bot}#1`];
    const flag = batchBodiesFlagKey(bot);
    const watch = (client: Redis) =>
      new PerKeyMarksWatch({
        redis: client,
        botPrefix: bot,
        prefixes: async () => prefixes,
        claims: (p) => new DispatchClaims(client, p, 60),
        windowSeconds: 60,
        everyMs: 60_000,
        shutdownTimeoutMs: 30_000,
        log: pino({ level: 'silent' }),
      });
    /** One look (the interval's lock lapsed): whether the flag is set after it. */
    const look = async (client = redis) => {
      await redis.del(`${bot}:claims:look`);
      await watch(client).check();
      return (await redis.exists(flag)) === 1;
    };
    expect(await look()).toBe(true);
    // For a few intervals: a worker's look renews it, and it ends soon once no worker looks.
    expect(watch(redis).bodiesFlagSeconds()).toBe(180);
    expect(await redis.ttl(flag)).toBeGreaterThan(170);
    // This release's consumer changes nothing; one of the release before (named) or of the
    // releases before it (unnamed), on any partition, deletes it until it is gone.
    const names = [
      consumerClientName(prefixes[0]!, QUEUES.events, CLAIMS_WORKER_NAME),
      consumerClientName(prefixes[1]!, QUEUES.events, 'bucketed-claims'),
      consumerClientName(prefixes[0]!, QUEUES.events),
    ];
    for (const [i, name] of names.entries()) {
      const consumer = new Redis(server.url, { connectionName: name });
      try {
        await consumer.ping();
        expect(await look()).toBe(i === 0);
      } finally {
        consumer.disconnect();
      }
      await waitUntil(
        `${name} gone`,
        async () => !String(await redis.client('LIST')).includes(` name=${name} `),
      );
      expect(await look()).toBe(true);
    }
    await redis.acl('SETUSER', 'nolist', 'on', '>pw', '~*', '+@all', '-client|list');
    const limited = new Redis(server.url, { username: 'nolist', password: 'pw' });
    await redis.del(`${bot}:claims:per-key`);
    try {
      expect(await look(limited)).toBe(false);
      expect(await redis.exists(`${bot}:claims:per-key`)).toBe(1);
    } finally {
      limited.disconnect();
      await redis.acl('DELUSER', 'nolist');
    }
  });

  test('across a rolling upgrade, an old worker (a key per dispatch) and a new one (buckets) run a dispatch once', async () => {
    const upgrade = `${prefix}-roll`;
    const oldClaims = new PerKeyClaims(redis, upgrade, 60);
    const newClaims = new DispatchClaims(redis, upgrade, 60);
    // An old release's batch consumer is connected (an unnamed BullMQ worker): the watch keeps
    // the per-key marks in use before the new worker takes a batch.
    const oldWorker = new Worker(QUEUES.events, async () => undefined, {
      connection: { url: server.url },
      prefix: upgrade,
    });
    const newWorker = new Worker(QUEUES.events, async () => undefined, {
      connection: { url: server.url },
      prefix: `${prefix}-alone`,
      name: CLAIMS_WORKER_NAME,
    });
    const watch = (prefixes: string[], claims: DispatchClaims) =>
      new PerKeyMarksWatch({
        redis,
        botPrefix: prefixes[0]!,
        prefixes: async () => prefixes,
        claims: () => claims,
        windowSeconds: 60,
        everyMs: 60_000,
        shutdownTimeoutMs: 30_000,
        log: pino({ level: 'silent' }),
      });
    try {
      await waitUntil('both consumers connected', async () => {
        const list = String(await redis.client('LIST'));
        return (
          list.includes(`name=${oldWorkerClientName(upgrade)} `) && list.includes(`:w:${CLAIMS_WORKER_NAME}`)
        );
      });
      const looking = watch([upgrade], newClaims);
      await looking.check();
      // Kept a window plus two intervals plus the old worker's shutdown grace after the sighting.
      expect(looking.flagSeconds()).toBe(60 + 120 + 30);
      expect(await redis.ttl(`${upgrade}:claims:per-key`)).toBeGreaterThan(60 + 120);
      // One look per bot per interval: another worker's check within it does not look again.
      await redis.del(`${upgrade}:claims:per-key`);
      await watch([upgrade], newClaims).check();
      expect(await redis.exists(`${upgrade}:claims:per-key`)).toBe(0);
      // The next interval's look (the lock lapsed) sees the old worker again and sets it again.
      await redis.del(`${upgrade}:claims:look`);
      await watch([upgrade], newClaims).check();
      expect(await redis.exists(`${upgrade}:claims:per-key`)).toBe(1);
      // Only workers of this release: nothing is kept per key.
      const alone = new DispatchClaims(redis, `${prefix}-alone`, 60);
      await watch([`${prefix}-alone`], alone).check();
      expect(await redis.exists(`${prefix}-alone:claims:per-key`)).toBe(0);
    } finally {
      await Promise.all([oldWorker.close(), newWorker.close()]);
    }

    // Either release sees the other's claims and done marks, in both orders.
    expect(await oldClaims.claim(owner('event-batches/1'), ['u1'])).toEqual(['claimed']);
    expect(await newClaims.claim(owner('event-batches/2'), ['u1', 'u2'])).toEqual(['busy', 'claimed']);
    expect(await oldClaims.claim(owner('event-batches/3'), ['u2'])).toEqual(['busy']);
    await oldClaims.finish(owner('event-batches/1'), ['u1'], []);
    await newClaims.finish(owner('event-batches/2'), ['u2'], []);
    expect(await newClaims.claim(owner('event-batches/4'), ['u1', 'u2'])).toEqual(['done', 'done']);
    expect(await oldClaims.claim(owner('event-batches/5'), ['u1', 'u2'])).toEqual(['done', 'done']);
    // A new worker's give-up frees the key for an old worker's copy too.
    expect(await newClaims.claim(owner('event-batches/6'), ['u3'])).toEqual(['claimed']);
    await newClaims.finish(owner('event-batches/6'), [], ['u3']);
    expect(await oldClaims.claim(owner('event-batches/7'), ['u3'])).toEqual(['claimed']);

    // Whole batches: the same dispatches through both releases' runners, each runs once.
    const runs: string[] = [];
    const record = async (id: string) => {
      runs.push(id);
    };
    const oldRunner = runnerFor(upgrade, record, { claims: oldClaims });
    const newRunner = runnerFor(upgrade, record, { claims: newClaims });
    const ids = Array.from({ length: 40 }, (_, i) => `r${i}`);
    const batch = (from: number) => ids.slice(from, from + 20).map((id, i) => inGuild(id, String(i % 3)));
    await Promise.all([
      newRunner.run(attempt('event-batches/10'), batch(0)),
      oldRunner.run(attempt('event-batches/11'), batch(10)),
      newRunner.run(attempt('event-batches/12'), batch(20)),
    ]);
    await Promise.all([
      oldRunner.run(attempt('event-batches/13'), batch(0)),
      newRunner.run(attempt('event-batches/14'), batch(10)),
      oldRunner.run(attempt('event-batches/15'), batch(20)),
    ]);
    expect(runs.sort()).toEqual([...ids].sort());
  });
});
