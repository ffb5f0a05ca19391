// Redis CPU per dispatch of BullMQ's part of the event path, for one job shape: enqueue (the
// forwarder's `add` of a batch job) and consume (a worker claiming and completing it; the
// dispatch claims are not included, dispatch-claims.ts measures those). Runs on its own
// redis-server and reads Redis' own accounting, so it means something on a loaded machine:
// INFO cpu (main thread) per phase, INFO commandstats (every command, those inside scripts too)
// and the slowlog at threshold 0 (each EVALSHA's time, named by BullMQ's script of that sha).
//   node dist/benchmarks/bullmq-cost.js [--jobs 300] [--per 100] [--size large|small]
//     [--variants base,byRef,stream,...] [--claims | --range-claims]   (prints one JSON document)
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Queue, Worker, type JobsOptions, type QueueOptions, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { messagePayload } from '../discord-simulator/index.js';
import { bulkJobs, type BulkJob, type Pending } from '../bot/gateway/forwarding/job-batches.js';
import { QUEUES, type BatchedDispatch } from '../bot/queues/queue-names.js';
import { DispatchClaims, type ClaimOwner } from '../bot/worker/processing/dispatch-claims.js';
import { runScope, startRedis } from '../testenv/index.js';

/** One way of running the queue: what the producer and the consumer are given. */
interface Variant {
  queue: Partial<QueueOptions>;
  worker: Partial<WorkerOptions>;
  /** What the processor returns (kept as the job's return value and in its 'completed' event). */
  returns: unknown;
  opts: (opts: JobsOptions) => JobsOptions;
  /**
   * The batch's body is written with a plain SET beside the job (pipelined before it) and the
   * job carries only its key; the consumer GETs it and deletes it on completion. Not what the
   * project does: measured to show what BullMQ's Lua costs per byte (docs/benchmarks.md).
   */
  byRef?: boolean;
  /**
   * No BullMQ at all: each batch is one entry of a Redis stream (XADD, its body a field), read
   * by a consumer group (XREADGROUP) and acknowledged and deleted once run (XACK, XDEL, one
   * MULTI). Not what the project does: the transport floor the Redis row was argued against
   * (docs/benchmarks.md, "A stream instead of BullMQ").
   */
  stream?: boolean;
}

const same = (opts: JobsOptions): JobsOptions => opts;

/** The settings compared; `current` is what the project ships. */
const VARIANTS: Record<string, Variant> = {
  // BullMQ's defaults as the gateway and worker used them before this change.
  base: { queue: {}, worker: {}, returns: 'MESSAGE_CREATE', opts: same },
  // The batch body outside BullMQ's scripts.
  byRef: { queue: {}, worker: {}, returns: undefined, opts: same, byRef: true },
  // Each lever alone, on top of base.
  maxLen: { queue: { streams: { events: { maxLen: 100 } } }, worker: {}, returns: 'x', opts: same },
  noReturn: { queue: {}, worker: {}, returns: undefined, opts: same },
  stream: { queue: {}, worker: {}, returns: undefined, opts: same, stream: true },
};

function dispatchOf(size: string, job: number, i: number): BatchedDispatch {
  const d =
    size === 'small'
      ? { channel_id: '1', guild_id: String(i % 20), user_id: `${job}${i}`, timestamp: 1 }
      : messagePayload({ id: `${job}${i}`, guildId: String(i % 20), channelId: '1' });
  return {
    t: size === 'small' ? 'TYPING_START' : 'MESSAGE_CREATE',
    d,
    shardId: 0,
    seq: job * PER + i, // one shard's session, batch after batch
    receivedAt: Date.now(),
    generation: 1,
    key: `k-${job}-${i}`,
  } as BatchedDispatch;
}

/** BullMQ's Lua scripts by the sha ioredis calls them with. */
function scriptNames(): Map<string, string> {
  // The CommonJS build: the ESM one's index imports without file extensions.
  const require = createRequire(import.meta.url);
  const bullmqScripts = require('../../node_modules/bullmq/dist/cjs/scripts/index.js') as object;
  const names = new Map<string, string>();
  for (const s of Object.values(bullmqScripts) as { name?: string; content?: string }[]) {
    if (s.name && s.content) names.set(createHash('sha1').update(s.content).digest('hex'), s.name);
  }
  return names;
}

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '300' },
    per: { type: 'string', default: '100' },
    size: { type: 'string', default: 'large' },
    variants: { type: 'string', default: 'base,byRef' },
    rounds: { type: 'string', default: '2' },
    // Also claim and mark done each batch's keys as the worker does (dispatch-claims.ts).
    claims: { type: 'boolean', default: false },
    // Instead, claim one range of sequences per shard and session (`stream` only): a sketch.
    'range-claims': { type: 'boolean', default: false },
  },
});
if (args['range-claims'] && (args.claims || args.variants!.split(',').some((v) => v !== 'stream')))
  throw new Error('--range-claims is measured on the stream variant only, without --claims');
const JOBS = Number(args.jobs);
const IDLE_MS = 6_000;
const PER = Number(args.per);
const names = scriptNames();

const scope = runScope();
const server = scope.own(await startRedis(), (r) => r.close());
const redis = new Redis(server.url, { maxRetriesPerRequest: null });
await redis.config('SET', 'slowlog-log-slower-than', '0');
await redis.config('SET', 'slowlog-max-len', '1000000');

/** Redis' main thread CPU so far: user and system (page faults, socket I/O) seconds. */
async function cpuSeconds(): Promise<[number, number]> {
  const s = await redis.info('cpu');
  const g = (k: string): number => Number(new RegExp(`${k}:([0-9.]+)`).exec(s)![1]);
  return [g('used_cpu_user_main_thread'), g('used_cpu_sys_main_thread')];
}

/** µs per dispatch by command (commandstats) and by BullMQ script (slowlog), since `reset`. */
async function accounting(dispatches: number) {
  const perDispatch = (us: number): number => Math.round((us / dispatches) * 1000) / 1000;
  const commands: Record<string, { calls: number; usPerDispatch: number }> = {};
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m?.[1] && m[1] !== 'slowlog' && m[1] !== 'info' && m[1] !== 'config')
      commands[m[1]!] = { calls: Number(m[2]), usPerDispatch: perDispatch(Number(m[3])) };
  }
  const scripts: Record<string, { calls: number; usPerDispatch: number }> = {};
  const log = (await redis.call('SLOWLOG', 'GET', '-1')) as [number, number, number, string[]][];
  for (const [, , us, argv] of log) {
    const cmd = argv[0]?.toLowerCase() ?? '';
    const name = cmd === 'evalsha' ? (names.get(argv[1] ?? '') ?? argv[1] ?? '') : cmd;
    if (name === 'slowlog' || name === 'info' || name === 'config') continue;
    const entry = (scripts[name] ??= { calls: 0, usPerDispatch: 0 });
    entry.calls += 1;
    entry.usPerDispatch += us;
  }
  for (const e of Object.values(scripts)) e.usPerDispatch = perDispatch(e.usPerDispatch);
  return { commands, scripts };
}

/** CPU seconds since `before`: all, and the system part. */
async function cpuSince(before: [number, number]): Promise<{ all: number; sys: number }> {
  const [user, sys] = await cpuSeconds();
  return { all: user - before[0] + sys - before[1], sys: sys - before[1] };
}

async function reset(): Promise<[number, number]> {
  await redis.config('RESETSTAT');
  await redis.call('SLOWLOG', 'RESET');
  return cpuSeconds();
}

/** Each batch's keys, claimed and marked done as the worker does (dispatch-claims.ts), with --claims. */
async function claimAndFinish(claims: DispatchClaims, owner: ClaimOwner, job: string): Promise<void> {
  const keys = Array.from({ length: PER }, (_, i) => `k-${job}-${i}`);
  await claims.claim(owner, keys);
  await claims.finish(owner, keys, []);
}

/** The batch jobs the forwarder would write, as BullMQ jobs. */
function batchJobs(): BulkJob[] {
  return Array.from({ length: JOBS }, (_, j) => {
    const batch: Pending[] = Array.from({ length: PER }, (_, i) => ({
      queue: 'events',
      dispatch: dispatchOf(args.size!, j, i),
    }));
    return bulkJobs(batch).events![0]!;
  });
}

/**
 * --range-claims: what a batch's de-duplication could cost if it claimed one range of sequences
 * per shard and session (docs/benchmarks.md, "A stream instead of BullMQ"). A sketch measured,
 * not what workers do: a range overlapping one claimed before is only reported (the design would
 * settle it key by key), and this benchmark's never overlap.
 * KEYS: the ranges' key prefix; ARGV: the attempt, then (stream, first, last) per range.
 */
const RANGE_CLAIM = `
local out = {}
for i = 2, #ARGV, 3 do
  local key, first, last = KEYS[1] .. ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local near = redis.call('ZREVRANGEBYSCORE', key, last, '-inf', 'LIMIT', 0, 1)[1]
  local overlaps = near and tonumber(string.match(near, '^%d+:(%d+)')) >= first
  if not overlaps then redis.call('ZADD', key, first, first .. ':' .. last .. ':' .. ARGV[1]) end
  out[#out + 1] = overlaps and 1 or 0
end
return out`;

/**
 * Per shard of a batch, its first and last sequence. (The design would key a range by shard and
 * session; a batch would carry its sessions. This benchmark's shard has one.)
 */
function rangesOf(dispatches: readonly BatchedDispatch[]): string[] {
  const ranges = new Map<string, [number, number]>();
  for (const d of dispatches) {
    const stream = `shard-${d.shardId}`;
    const r = ranges.get(stream);
    if (!r) ranges.set(stream, [d.seq, d.seq]);
    else {
      r[0] = Math.min(r[0], d.seq);
      r[1] = Math.max(r[1], d.seq);
    }
  }
  return [...ranges].flatMap(([stream, [first, last]]) => [stream, String(first), String(last)]);
}

/**
 * Claims the batch's ranges in one round trip. Its done record would be the stream's own
 * acknowledgement (XACK), written with it; only an attempt that fails part way would need a
 * record of which dispatches finished.
 */
async function rangeClaim(c: Redis, prefix: string, attempt: string, dispatches: BatchedDispatch[]) {
  const claim = c as Redis & { shardwardenRangeClaim?: (...args: (string | number)[]) => Promise<number[]> };
  if (!claim.shardwardenRangeClaim)
    c.defineCommand('shardwardenRangeClaim', { numberOfKeys: 1, lua: RANGE_CLAIM });
  const overlaps = await claim.shardwardenRangeClaim!(`${prefix}:ranges:`, attempt, ...rangesOf(dispatches));
  if (overlaps.some((o) => o === 1)) throw new Error(`batch ${attempt} overlaps a range claimed before`);
}

/**
 * The `stream` variant: enqueue as XADDs (pipelined, four in flight as the forwarder's batches
 * are), consume with a consumer group as four workers would, each XREADGROUP taking one batch.
 */
async function streamRound(prefix: string, claims: DispatchClaims | undefined) {
  const key = `${prefix}:${QUEUES.events}:stream`;
  const jobs = batchJobs();
  const before = await reset();
  for (let j = 0; j < JOBS; j += 4)
    await Promise.all(jobs.slice(j, j + 4).map((job) => redis.xadd(key, '*', 'b', JSON.stringify(job.data))));
  const enqueueCpu = await cpuSince(before);
  const enqueue = await accounting(JOBS * PER);
  const bytesPerJob = Number(await redis.call('MEMORY', 'USAGE', key)) / JOBS;
  await redis.xgroup('CREATE', key, 'workers', '0');
  const consumers = Array.from({ length: 4 }, () => new Redis(server.url));
  const beforeConsume = await reset();
  let left = JOBS;
  await Promise.all(
    consumers.map(async (c, n) => {
      while (left > 0) {
        const reply = (await c.xreadgroup(
          'GROUP',
          'workers',
          `c${n}`,
          'COUNT',
          1,
          'BLOCK',
          100,
          'STREAMS',
          key,
          '>',
        )) as [string, [string, string[]][]][] | null;
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          const { dispatches } = JSON.parse(fields[1]!) as { dispatches: BatchedDispatch[] };
          if (claims) await claimAndFinish(claims, { job: `${key}/${id}/`, token: `c${n}` }, id);
          if (args['range-claims']) await rangeClaim(c, prefix, `${id}/c${n}`, dispatches);
          await c.multi().xack(key, 'workers', id).xdel(key, id).exec();
          left -= 1;
        }
      }
    }),
  );
  const consumeCpu = await cpuSince(beforeConsume);
  const consume = await accounting(JOBS * PER);
  for (const c of consumers) c.disconnect();
  await redis.unlink(key);
  return { enqueueCpu, enqueue, consumeCpu, consume, bytesPerJob };
}

let run = 0;
async function measure(name: string, v: Variant) {
  run += 1;
  const prefix = `bench:{b${run}}`;
  const dispatches = JOBS * PER;
  if (v.stream) {
    const claims = args.claims ? new DispatchClaims(redis, prefix, 3600) : undefined;
    const r = await streamRound(prefix, claims);
    return {
      variant: name,
      ...redisCpu(r.enqueueCpu, r.consumeCpu),
      jobHashBytes: Math.round(r.bytesPerJob),
      enqueue: r.enqueue,
      consume: r.consume,
    };
  }
  const queue = new Queue(QUEUES.events, { connection: redis, prefix, ...v.queue });
  const jobs = batchJobs();
  let before = await reset();
  for (const [j, job] of jobs.entries()) {
    if (v.byRef) {
      const ref = `${prefix}:body:${j}`;
      const pipeline = redis.pipeline().set(ref, JSON.stringify(job.data));
      await Promise.all([pipeline.exec(), queue.add(job.name, { ref }, v.opts(job.opts))]);
    } else await queue.add(job.name, job.data, v.opts(job.opts));
  }
  const enqueueCpu = await cpuSince(before);
  const enqueue = await accounting(dispatches);
  const bytesPerJob =
    Number(await redis.call('MEMORY', 'USAGE', `${prefix}:${QUEUES.events}:1`)) +
    (v.byRef ? Number(await redis.call('MEMORY', 'USAGE', `${prefix}:body:0`)) : 0);

  const claims = args.claims ? new DispatchClaims(redis, prefix, 3600) : undefined;
  let done = 0;
  let finished!: () => void;
  const all = new Promise<void>((res) => (finished = res));
  before = await reset();
  const worker = new Worker(
    QUEUES.events,
    async (job) => {
      const ref = (job.data as { ref?: string }).ref;
      if (ref) JSON.parse((await redis.get(ref))!);
      if (ref) await redis.del(ref);
      if (claims)
        await claimAndFinish(
          claims,
          {
            job: `${prefix}:${QUEUES.events}/${job.id}/`,
            token: job.token ?? '',
            lockKey: `${prefix}:${QUEUES.events}:${job.id}:lock`,
          },
          job.id!,
        );
      if (++done === JOBS) setImmediate(finished);
      return v.returns;
    },
    { connection: { ...redisOptions(), maxRetriesPerRequest: null }, prefix, concurrency: 4, ...v.worker },
  );
  await all;
  // Completions are written before the processor's promise settles the next one; wait for the last.
  while ((await queue.getJobCountByTypes('active', 'wait')) > 0) await sleep(20);
  const consumeCpu = await cpuSince(before);
  const consume = await accounting(dispatches);
  // What an idle worker costs (its blocking fetch, lock and stall checks), per second; the CPU
  // includes Redis' own timers (serverCron), which run with no client at all.
  before = await reset();
  await sleep(IDLE_MS);
  const idleCpu = await cpuSince(before);
  const idleCommands = (await accounting(1)).commands;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return {
    variant: name,
    ...redisCpu(enqueueCpu, consumeCpu),
    jobHashBytes: bytesPerJob,
    idle: {
      redisCpuUsPerSecond: Math.round((idleCpu.all * 1e6 * 1000) / IDLE_MS),
      calls: Object.fromEntries(Object.entries(idleCommands).map(([c, e]) => [c, e.calls])),
    },
    enqueue,
    consume,
  };
}

type Cpu = { all: number; sys: number };

/**
 * Redis CPU µs of the two phases per dispatch (with their total and its system, kernel, part)
 * and per job.
 */
function redisCpu(enqueueCpu: Cpu, consumeCpu: Cpu) {
  const us = (s: number): number => Math.round(((s * 1e6) / (JOBS * PER)) * 100) / 100;
  const perDispatch = {
    enqueue: us(enqueueCpu.all),
    consume: us(consumeCpu.all),
    total: us(enqueueCpu.all + consumeCpu.all),
    systemPart: us(enqueueCpu.sys + consumeCpu.sys),
  };
  return {
    redisCpuUsPerDispatch: perDispatch,
    redisCpuUsPerJob: {
      enqueue: Math.round(perDispatch.enqueue * PER),
      consume: Math.round(perDispatch.consume * PER),
    },
  };
}

function redisOptions() {
  const u = new URL(server.url);
  return { host: u.hostname, port: Number(u.port) };
}

/**
 * Redis CPU µs per command carrying a value of `bytes` plainly and through a Lua script (as
 * BullMQ's scripts carry a job's data in and out): what the per-byte part of a job costs.
 */
async function luaPerByte(bytes: number) {
  const value = 'x'.repeat(bytes);
  const N = 300;
  const ops: Record<string, (i: number) => Promise<unknown>> = {
    set: (i) => redis.set(`v${i}`, value),
    evalHset: (i) => redis.eval("return redis.call('HSET', KEYS[1], 'data', ARGV[1])", 1, `h${i}`, value),
    get: (i) => redis.get(`v${i}`),
    evalHgetall: (i) => redis.eval("return redis.call('HGETALL', KEYS[1])", 1, `h${i}`),
  };
  const usPerOp: Record<string, number> = {};
  for (const [name, op] of Object.entries(ops)) {
    const before = await cpuSeconds();
    for (let i = 0; i < N; i++) await op(i);
    const { all } = await cpuSince(before);
    usPerOp[name] = Math.round((all * 1e6) / N);
  }
  await redis.flushdb();
  return { bytes, usPerOp };
}

const results = [];
for (let r = 0; r < Number(args.rounds); r++)
  for (const name of args.variants!.split(',')) results.push(await measure(name, VARIANTS[name]!));
const lua = [await luaPerByte(1_000), await luaPerByte(80_000)];
redis.disconnect();
await scope.stop();
console.log(
  JSON.stringify(
    {
      jobs: JOBS,
      dispatchesPerJob: PER,
      size: args.size,
      claims: args.claims,
      rangeClaims: args['range-claims'],
      results,
      lua,
    },
    null,
    2,
  ),
);
