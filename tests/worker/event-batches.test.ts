// Batched events: what the forwarder writes for a batch, what a job carries, how a claimed batch
// is planned (pure), and the claim and a batch's run against a real Redis: keys already done are
// skipped, a retried batch runs only what failed (and what waited behind it in its guild).
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { bulkJobs, type Pending } from '../../bot/gateway/forwarding/job-batches.js';
import { queuePrefix, type BatchedDispatch } from '../../bot/queues/queue-names.js';
import { defineBotModule, type WorkerServices } from '../../bot/worker/handlers/bot-module.js';
import { HandlerRegistry } from '../../bot/worker/handlers/handler-registry.js';
import { WorkerMetrics } from '../../bot/worker/metrics.js';
import { claimStates, DispatchClaims } from '../../bot/worker/processing/dispatch-claims.js';
import {
  BatchIntake,
  batchError,
  dispatchesOf,
  orderKey,
  planBatch,
} from '../../bot/worker/processing/event-batch.js';
import { EventBatchRunner, Slots } from '../../bot/worker/processing/event-batch-runner.js';
import { startRedis, type RedisServer } from '../../testenv/index.js';
import { metricSum } from '../gateway/harness.js';

function dispatch(key: string, d: Record<string, unknown> = {}, t = 'MESSAGE_CREATE'): BatchedDispatch {
  return { t, d, shardId: 0, seq: 1, receivedAt: 1_000, generation: 1, key };
}
const inGuild = (key: string, guild: string) => dispatch(key, { id: key, guild_id: guild });

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
});

describe('what a job carries', () => {
  test('a batch, or the single dispatch of a gateway before batching (its job id is its key)', () => {
    const d = inGuild('MESSAGE_CREATE-1', '7');
    expect(dispatchesOf({ id: '12', data: { dispatches: [d] } })).toEqual([d]);
    const { key, ...single } = d;
    expect(dispatchesOf({ id: key, data: single })).toEqual([d]);
    expect(() => dispatchesOf({ id: '13', data: { hello: 1 } })).toThrow(
      'job 13 carries neither a batch of dispatches nor a dispatch',
    );
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

  test('one claim takes free keys, reports done ones and those of another job; its own job takes them back', async () => {
    const claims = new DispatchClaims(redis, prefix, 60);
    expect(await claims.claim('job/1', ['k1', 'k2', 'k3'])).toEqual(['claimed', 'claimed', 'claimed']);
    await claims.finish('job/1', ['k1'], ['k3']);
    expect(await claims.claim('job/2', ['k1', 'k2', 'k3', 'k4'])).toEqual([
      'done',
      'busy',
      'claimed',
      'claimed',
    ]);
    expect(await claims.claim('job/1', ['k2'])).toEqual(['claimed']); // a retry of job 1
    // Keys live in the bot's hash slot, for the window.
    expect(await redis.get(`${prefix}:dispatch:k1`)).toBe('done');
    expect(await redis.ttl(`${prefix}:dispatch:k1`)).toBeGreaterThan(0);
    expect(await redis.ttl(`${prefix}:dispatch:k4`)).toBeGreaterThan(0);
    // Giving up a claim another job holds leaves it alone.
    await claims.finish('job/1', [], ['k4']);
    expect(await redis.get(`${prefix}:dispatch:k4`)).toBe('job/2');
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
    });
    const metric = async (match: string) =>
      metricSum(await registry.metrics(), 'shardwarden_worker_dispatches_total', match);
    // Done before this batch (an earlier job ran it, e.g. the other generation's copy).
    await claims.claim('events/0', ['m1']);
    await claims.finish('events/0', ['m1'], []);
    const batch = ['m1', 'm2', 'm3', 'm4', 'm5'].map((id, i) => inGuild(id, i % 2 === 0 ? 'A' : 'B'));
    // Guild A: m1 (done), m3 (fails), m5 (held behind m3); guild B: m2, m4.

    await expect(runner.run('event-batches/7', batch)).rejects.toThrow(
      '1 dispatch(es) failed (1 more held behind them); first: MESSAGE_CREATE m3: handler refused m3',
    );
    expect(runs.sort()).toEqual(['m2', 'm4']);
    expect(await metric('outcome="skipped"')).toBe(1);
    expect(await metric('outcome="completed"')).toBe(2);
    expect(await metric('outcome="failed"')).toBe(1);

    // BullMQ retries the job: the same owner, the same batch.
    failing.clear();
    runs.length = 0;
    await runner.run('event-batches/7', batch);
    expect(runs).toEqual(['m3', 'm5']); // in the guild's order
    expect(await metric('outcome="skipped"')).toBe(1 + 3);

    // A copy of the batch (a replay) runs nothing.
    runs.length = 0;
    await runner.run('event-batches/8', batch);
    expect(runs).toEqual([]);
    for (const id of ['m1', 'm2', 'm3', 'm4', 'm5'])
      expect(await redis.get(`${prefix}-run:dispatch:${id}`)).toBe('done');
  });

  test("during an upgrade, a dispatch an old gateway queued as its own job and a new gateway's batch replays runs once", async () => {
    const runs: string[] = [];
    const runner = new EventBatchRunner({
      claims: new DispatchClaims(redis, `${prefix}-upgrade`, 60),
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
    });
    const { key, ...single } = inGuild('MESSAGE_CREATE-5', '1');
    await runner.run(`events/${key}`, dispatchesOf({ id: key, data: single }));
    await runner.run('event-batches/1', [inGuild('MESSAGE_CREATE-5', '1'), inGuild('MESSAGE_CREATE-6', '1')]);
    expect(runs).toEqual(['MESSAGE_CREATE-5', 'MESSAGE_CREATE-6']);
  });
});
