// Redis CPU per dispatch of BullMQ's part of the event path, for one job shape: enqueue (the
// forwarder's `add` of a batch job) and consume (a worker claiming and completing it; the
// dispatch claims are not included, dispatch-claims.ts measures those). Runs on its own
// redis-server and reads Redis' own accounting, so it means something on a loaded machine:
// INFO cpu (main thread) per phase, INFO commandstats (every command, those inside scripts too)
// and the slowlog at threshold 0 (each EVALSHA's time, named by BullMQ's script of that sha).
//   node dist/benchmarks/bullmq-cost.js [--jobs 300] [--per 100] [--size large|small]
//     [--variants base,lean,...]   (prints one JSON document)
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Queue, Worker, type JobsOptions, type QueueOptions, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { messagePayload } from '../discord-simulator/index.js';
import { bulkJobs, type Pending } from '../bot/gateway/forwarding/job-batches.js';
import { QUEUES, type BatchedDispatch } from '../bot/queues/queue-names.js';
import { DispatchClaims } from '../bot/worker/processing/dispatch-claims.js';
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
    seq: i,
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
  },
});
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

let run = 0;
async function measure(name: string, v: Variant) {
  run += 1;
  const prefix = `bench:{b${run}}`;
  const dispatches = JOBS * PER;
  const queue = new Queue(QUEUES.events, { connection: redis, prefix, ...v.queue });
  let before = await reset();
  for (let j = 0; j < JOBS; j++) {
    const batch: Pending[] = Array.from({ length: PER }, (_, i) => ({
      queue: 'events',
      dispatch: dispatchOf(args.size!, j, i),
    }));
    const job = bulkJobs(batch).events![0]!;
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
      if (claims) {
        const keys = Array.from({ length: PER }, (_, i) => `k-${job.id}-${i}`);
        const owner = {
          job: `${prefix}:${QUEUES.events}/${job.id}/`,
          token: job.token ?? '',
          lockKey: `${prefix}:${QUEUES.events}:${job.id}:lock`,
        };
        await claims.claim(owner, keys);
        await claims.finish(owner, keys, []);
      }
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
  const us = (s: number): number => Math.round(((s * 1e6) / dispatches) * 100) / 100;
  return {
    variant: name,
    redisCpuUsPerDispatch: {
      enqueue: us(enqueueCpu.all),
      consume: us(consumeCpu.all),
      total: us(enqueueCpu.all + consumeCpu.all),
      systemPart: us(enqueueCpu.sys + consumeCpu.sys),
    },
    redisCpuUsPerJob: {
      enqueue: Math.round(us(enqueueCpu.all) * PER),
      consume: Math.round(us(consumeCpu.all) * PER),
    },
    jobHashBytes: bytesPerJob,
    idle: {
      redisCpuUsPerSecond: Math.round((idleCpu.all * 1e6 * 1000) / IDLE_MS),
      calls: Object.fromEntries(Object.entries(idleCommands).map(([c, e]) => [c, e.calls])),
    },
    enqueue,
    consume,
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
    { jobs: JOBS, dispatchesPerJob: PER, size: args.size, claims: args.claims, results, lua },
    null,
    2,
  ),
);
