// One event partition's share of the forwarder (dispatch-forwarder.ts): its own buffer, batch
// window, batches in flight and retries, so each partition's jobs fill up on their own. Were the
// partitions to share one buffer, a batch would split into a job per partition it touches and
// each master would get jobs of 1/P the size: BullMQ's cost is per job (job-batches.ts), so it
// would not spread over a Redis Cluster's masters. Partition 0's lane also takes the interactions
// (their queue is in the bot's own slot). With one partition there is one lane: the forwarder of
// releases before partitions.
// A dispatch counts as sent only when Redis answered for its batch, and leaves the buffer only
// then. After a partial failure the batches that got through behind the failed one are queued
// ahead of its retry: no order across batches is promised (docs/workers.md).
// After a failure the lane writes one batch at a time again until one gets through.
// A batch the queue keeps refusing while the partition's master accepts writes is not an outage:
// it is sent one dispatch at a time and only what is still refused is dropped (counted, logged),
// so one bad dispatch cannot hold back everything behind it. (Reads are no test: Redis at
// maxmemory, a read-only replica or a failing disk refuse writes and still answer reads.)
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { ReplyError } from 'ioredis';
import type { RedisClient } from '../../configuration/redis-connection.js';
import type { Logger } from '../../observability/logger.js';
import { countByType } from '../../queues/count-by-type.js';
import {
  BATCH_BODY_TTL_SECONDS,
  batchBodyKey,
  type DispatchBatchJob,
  type DispatchBatchRef,
} from '../../queues/queue-names.js';
import type { GatewayMetrics } from '../metrics.js';
import { within } from '../../timing/within.js';
import { bulkJobs, withBody, type BulkJob, type Pending } from './job-batches.js';

/** What the lanes of one forwarder share. */
export interface LaneContext {
  /** Where batch bodies are written, and whether now (every consumer reads them); absent: inline. */
  batchBodies?: BatchBodies;
  batchSize: number;
  batchDelayMs: number;
  /** Batches this lane writes at once (pipelined) while full batches are waiting. */
  batchesInFlight: number;
  /** A small write in this lane's partition's slot: resolves when its master accepts writes. */
  probeWrite: (partition: number) => Promise<unknown>;
  /** Before every write (the forwarder's partition announcement; resolved once it succeeded). */
  beforeWrite: () => Promise<unknown>;
  metrics: GatewayMetrics;
  log: Logger;
  /** Every lane's buffered dispatches: the buffer depth gauge and the drain's wait. */
  buffered: () => number;
  /** `n` dispatches left this lane's buffer (in the queue, or dropped): the forwarder's count. */
  released: (n: number) => void;
  /** Called when this lane's buffer may have emptied (the forwarder's drain waits on it). */
  maybeIdle: () => void;
}

/** Batch bodies (queue-names.ts, DispatchBatchRef): the client that writes them, and whether to now. */
export interface BatchBodies {
  redis: RedisClient;
  enabled: () => boolean;
  /** The fewest dispatches a batch written as a body has (default BATCH_BODY_MIN_DISPATCHES). */
  minDispatches?: number;
}

/**
 * A body costs Redis three commands more per batch (its SET, GET and UNLINK) and saves the copy of
 * the dispatches through BullMQ's scripts, which grows with them: measured end to end, bodies cost
 * Redis less at full batches of 400, about the same at 100, and no less at the 15-dispatch
 * batches of a paced stream (docs/benchmarks.md). Smaller batches stay inline.
 */
export const BATCH_BODY_MIN_DISPATCHES = 100;

/** The announcement before the first write failed: partition 0's master refused it, not this lane's. */
class AnnounceFailed extends Error {}

/** Failures of one batch in a row before asking whether it is the batch, not Redis. */
const FAILURES_BEFORE_ISOLATING = 3;

/** A batch written to Redis and not answered yet (its dispatches are still in the buffer). */
interface InFlight {
  batch: Pending[];
  started: number;
  answer?: { error?: unknown };
}

/**
 * BullMQ's addBulk builds an ioredis pipeline per call, which defines a method for each of
 * BullMQ's scripts: about a fifth of the forwarder's CPU per dispatch. A batch of events is one job,
 * which `add` writes on the connection itself (pipelined with the other batches in flight).
 */
function addJobs(queue: Queue, jobs: BulkJob[]): Promise<unknown> {
  const [job] = jobs;
  return jobs.length === 1 ? queue.add(job!.name, job!.data, job!.opts) : queue.addBulk(jobs);
}

/**
 * A batch of events as its body (SET, with an expiry) and then a job referring to it, in the
 * queue's partition's slot. The job only once the body is in: a job whose
 * body was refused would fail on every worker. A body whose job Redis refused (an error reply:
 * no job was added) is deleted; after any other failure (a timeout, a lost connection) it is left
 * to its expiry: the add may have landed with its answer lost, and that job needs it (the batch's
 * retry writes a second copy, which the claims de-duplicate).
 */
async function addWithBody(redis: RedisClient, queue: Queue, batch: BulkJob): Promise<unknown> {
  const { job, body } = withBody(batch, batchBodyKey(queue.opts.prefix!, randomUUID()));
  const key = (job.data as DispatchBatchRef).body;
  await redis.set(key, body, 'EX', BATCH_BODY_TTL_SECONDS);
  try {
    return await queue.add(job.name, job.data, job.opts);
  } catch (err) {
    if (err instanceof ReplyError) await redis.unlink(key).catch(() => undefined);
    throw err;
  }
}

export class ForwarderLane {
  // A FIFO: entries before `head` are sent. Taking a batch off the front of a plain array
  // (slice + splice) moved the whole backlog on every batch, which showed in profiles once
  // a burst made the buffer deep; the sent prefix is now dropped only now and then.
  // Entries from `head` to `next` are being written (`inFlight`, in order); from `next` on, not yet.
  private buffer: Pending[] = [];
  private head = 0;
  private next = 0;
  private inFlight: InFlight[] = [];
  /** One batch at a time from the head, after a failure (`retryFromHead`). */
  private retrying = false;
  private timer?: NodeJS.Timeout;
  private retryDelayMs = 100;
  private failuresInARow = 0;

  constructor(
    /** `events`: this lane's partition's queue; `interactions` only in partition 0's lane. */
    private readonly queues: { interactions?: Queue; events: Queue },
    readonly partition: number,
    private readonly ctx: LaneContext,
  ) {}

  /** Buffers `p` and writes a full batch at once, a partial one when the window ends. */
  push(p: Pending): void {
    this.buffer.push(p);
    this.flushSoon(this.unsent() >= this.ctx.batchSize ? 0 : this.ctx.batchDelayMs);
  }

  flushSoon(delayMs: number): void {
    if (delayMs === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.pump();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, delayMs);
  }

  /**
   * Writes batches from the unsent part of the buffer, up to `batchesInFlight` at once. A partial
   * batch goes only when nothing is in flight: behind a reply it grows into a full one instead
   * (a job's cost is per job, not per dispatch). Every answer pumps again.
   */
  private pump(): void {
    if (this.retrying || this.inFlight.some((f) => f.answer?.error !== undefined)) return;
    while (this.inFlight.length < this.ctx.batchesInFlight) {
      const unsent = this.unsent();
      if (unsent === 0 || (unsent < this.ctx.batchSize && this.inFlight.length > 0)) return;
      const batch = this.buffer.slice(this.next, this.next + this.ctx.batchSize);
      this.next += batch.length;
      const flight: InFlight = { batch, started: performance.now() };
      this.inFlight.push(flight);
      this.addBatch(batch).then(
        () => this.answered(flight, {}),
        (error: unknown) => this.answered(flight, { error: error ?? new Error('enqueue failed') }),
      );
    }
  }

  /**
   * Redis answered for `flight`. The buffer is released from its head, in the order sent, so a
   * batch answered early waits for those before it. A failure stops new writes; once every batch
   * in flight has its answer, the failed ones go back to the head for `retryFromHead`.
   */
  private answered(flight: InFlight, answer: { error?: unknown }): void {
    flight.answer = answer;
    if (answer.error !== undefined) this.ctx.metrics.enqueueErrors.inc();
    while (this.inFlight[0]?.answer && this.inFlight[0].answer.error === undefined) {
      const done = this.inFlight.shift()!;
      this.dropSent(done.batch.length);
      this.sent(done.batch, done.started);
    }
    const failed = this.inFlight.find((f) => f.answer?.error !== undefined);
    if (!failed) {
      this.pump();
      this.ctx.maybeIdle();
      return;
    }
    if (this.inFlight.some((f) => !f.answer)) return;
    // What got through behind the failed batch is counted; the failed ones are unsent again.
    const retry: Pending[] = [];
    for (const f of this.inFlight)
      if (f.answer!.error === undefined) this.sent(f.batch, f.started);
      else retry.push(...f.batch);
    const before = this.buffered();
    this.buffer = [...retry, ...this.buffer.slice(this.next)];
    this.head = this.next = 0;
    this.ctx.released(before - this.buffered());
    this.inFlight = [];
    this.ctx.metrics.bufferDepth.set(this.ctx.buffered());
    void this.retryFromHead(failed.answer!.error);
  }

  /**
   * After a failed batch: one batch at a time from the head, with back-off (nothing is lost; any
   * batch that got through behind it is already queued ahead), isolating a batch that keeps
   * failing while Redis accepts writes, until one gets through; then batches are pipelined again.
   */
  private async retryFromHead(error: unknown): Promise<void> {
    this.retrying = true;
    try {
      for (;;) {
        await this.afterFailure(error);
        if (this.buffered() === 0 || this.failuresInARow === 0) return;
        const batch = this.buffer.slice(this.head, this.head + this.ctx.batchSize);
        const started = performance.now();
        try {
          await this.addBatch(batch);
        } catch (err) {
          this.ctx.metrics.enqueueErrors.inc();
          error = err;
          continue;
        }
        this.dropSent(batch.length);
        this.sent(batch, started);
        return;
      }
    } finally {
      this.retrying = false;
      this.pump();
      this.ctx.maybeIdle();
    }
  }

  /** Counts a failure of the head batch, then isolates it or waits before the next attempt. */
  private async afterFailure(error: unknown): Promise<void> {
    this.failuresInARow += 1;
    if (this.failuresInARow >= FAILURES_BEFORE_ISOLATING && (await this.redisAcceptsWrites(error))) {
      await this.sendOneByOne(this.buffer.slice(this.head, this.head + this.ctx.batchSize));
      return;
    }
    this.ctx.log.warn(
      {
        err: (error as Error).message,
        partition: this.partition,
        buffered: this.ctx.buffered(),
        retryInMs: this.retryDelayMs,
      },
      'enqueue failed; keeping dispatches buffered',
    );
    await new Promise((r) => setTimeout(r, this.retryDelayMs));
    this.retryDelayMs = Math.min(2_000, this.retryDelayMs * 2);
  }

  /** `batch` is in the queue (and off the buffer): count it. */
  private sent(batch: Pending[], started: number): void {
    this.retryDelayMs = 100;
    this.failuresInARow = 0;
    const { metrics } = this.ctx;
    metrics.batchSize.observe(batch.length);
    metrics.enqueueLatency.observe((performance.now() - started) / 1000);
    // One counter update per type and batch, not per dispatch (label lookups are not free).
    for (const [type, n] of countByType(batch.map((p) => p.dispatch))) metrics.forwarded.inc({ type }, n);
    metrics.bufferDepth.set(this.ctx.buffered());
  }

  /**
   * A batch that keeps failing while Redis accepts writes: each dispatch is tried on its own
   * (twice); one still refused while Redis accepts writes is dropped as `rejected`. If Redis
   * stops accepting them meanwhile, the rest stays at the head of the buffer for the usual retries.
   */
  private async sendOneByOne(batch: Pending[]): Promise<void> {
    for (const p of batch) {
      const started = performance.now();
      let error: unknown;
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await this.addBatch([p]);
          error = undefined;
          break;
        } catch (err) {
          error = err;
        }
      }
      if (!error) {
        this.dropSent(1);
        this.sent([p], started);
        continue;
      }
      if (!(await this.redisAcceptsWrites(error))) return;
      this.dropSent(1);
      this.failuresInARow = 0;
      this.ctx.metrics.dropped.inc({ type: p.dispatch.t, reason: 'rejected' });
      this.ctx.log.error(
        {
          err: (error as Error).message,
          type: p.dispatch.t,
          shard: p.dispatch.shardId,
          seq: p.dispatch.seq,
          key: p.dispatch.key,
        },
        'the queue refuses this dispatch while Redis answers: dropped',
      );
      this.ctx.metrics.bufferDepth.set(this.ctx.buffered());
    }
  }

  /**
   * Whether the master that refused `error` accepts a write within a second: an outage, or a
   * refused batch? Probed in that partition's own slot (this lane's, or partition 0's for the
   * announcement): on a Redis Cluster one master may refuse writes (maxmemory, a replica just
   * promoted) while the others accept them.
   */
  private redisAcceptsWrites(error: unknown): Promise<boolean> {
    const partition = error instanceof AnnounceFailed ? 0 : this.partition;
    const probe = this.ctx.probeWrite(partition).then(() => true);
    return within(probe, 1_000, () => false).catch(() => false);
  }

  /** The `n` dispatches at the head are in the queue (or dropped as rejected). */
  private dropSent(n: number): void {
    this.ctx.released(n);
    this.head += n;
    this.next = Math.max(this.next, this.head);
    if (this.head === this.buffer.length) {
      this.buffer = [];
      this.head = this.next = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.buffer.length) {
      this.buffer = this.buffer.slice(this.head);
      this.next -= this.head;
      this.head = 0;
    }
  }

  /** A batch's events: as a body beside its job when bodies are on and the batch is large enough. */
  private addEvents(jobs: BulkJob[]): Promise<unknown> {
    const bodies = this.ctx.batchBodies;
    const [batch] = jobs;
    const asBody =
      jobs.length === 1 &&
      bodies?.enabled() === true &&
      (batch!.data as DispatchBatchJob).dispatches.length >=
        (bodies.minDispatches ?? BATCH_BODY_MIN_DISPATCHES);
    return asBody
      ? addWithBody(bodies!.redis, this.queues.events, batch!)
      : addJobs(this.queues.events, jobs);
  }

  /**
   * The batch's jobs not yet written: one for its events, one per interaction (partition 0's
   * lane only). Should one write fail, the parts that landed are marked written and only the
   * others are written again (a copy on every retry would grow the backlog and, once the refusal
   * outlasted the claims' window, run again).
   */
  private async addBatch(batch: Pending[]): Promise<void> {
    await this.ctx.beforeWrite().catch((err: unknown) => {
      throw new AnnounceFailed((err as Error)?.message ?? String(err));
    });
    const jobs = bulkJobs(batch.filter((p) => !p.written));
    const written = (queue: Pending['queue']) => () => {
      for (const p of batch) if (p.queue === queue) p.written = true;
    };
    const writes = [
      jobs.interactions &&
        addJobs(this.queues.interactions!, jobs.interactions).then(written('interactions')),
      jobs.events && this.addEvents(jobs.events).then(written('events')),
    ];
    const failure = (await Promise.allSettled(writes)).find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
  }

  /** The oldest sequence of `shardId` not yet in the queue (Infinity if none). */
  oldestUnsent(shardId: number): number {
    let oldest = Infinity;
    for (let i = this.head; i < this.buffer.length; i++) {
      const p = this.buffer[i]!;
      if (p.dispatch.shardId === shardId && p.dispatch.seq < oldest) oldest = p.dispatch.seq;
    }
    return oldest;
  }

  /** Dispatches not yet in the queue (buffered or being written). */
  buffered(): number {
    return this.buffer.length - this.head;
  }

  private unsent(): number {
    return this.buffer.length - this.next;
  }
}
