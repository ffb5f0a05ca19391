// The gateway forwarder: the only thing the Ear does with a dispatch. Configured types are
// buffered and written in small batches (by count and by a few ms): the events of a batch become
// one BullMQ job, each interaction its own job on its own queue (job-batches.ts); every other
// type is dropped and counted. While Redis is unavailable, dispatches wait in a bounded buffer
// and are flushed when it returns (in order: an outage fails every batch in flight); what does
// not fit is counted and logged, never dropped silently. After a partial failure the batches
// that got through behind the failed one are queued ahead of its retry: no order across batches
// is promised (docs/workers.md).
// Under load several batches are written at once (`batchesInFlight`, pipelined on the one
// connection; why: docs/gateway.md, "The forwarder"). A dispatch still counts as sent only when
// Redis answered for its batch, and leaves the buffer only then.
// After a failure the forwarder writes one batch at a time again until one gets through.
// A batch the queue keeps refusing while Redis accepts writes is not an outage: it is sent one
// dispatch at a time and only what is still refused is dropped (counted, logged), so one bad
// dispatch cannot hold back everything behind it. (Reads are no test: Redis at maxmemory, a
// read-only replica or a failing disk refuse writes and still answer reads.)
import type { Queue } from 'bullmq';
import type { Logger } from '../../observability/logger.js';
import { eventPartitionOf, type BatchedDispatch } from '../../queues/queue-names.js';
import { dedupKey } from './dedup-key.js';
import { bulkJobs, byPartition, partitionOf, type BulkJob, type Pending } from './job-batches.js';
import { countByType } from '../../queues/count-by-type.js';
import type { GatewayMetrics } from '../metrics.js';
import { within } from '../../timing/within.js';

export interface ForwarderOptions {
  events: Set<string>;
  generation: number;
  batchSize: number;
  batchDelayMs: number;
  /** Batches written at once (pipelined) while full batches are waiting. */
  batchesInFlight: number;
  bufferLimit: number;
  /**
   * A small write in event partition `partition`'s slot (e.g. SET of a probe key there): resolves
   * when the master holding that partition accepts writes. Interactions are partition 0's.
   */
  probeWrite: (partition: number) => Promise<unknown>;
  /**
   * Written once, before the first job (and again until it succeeds): with event partitions,
   * raising the bot's partition high-water key (partition-high-water.ts), so workers and the
   * operator know every partition that may hold jobs before any does. In partition 0's slot.
   */
  beforeFirstWrite?: () => Promise<unknown>;
}

/** A batch some partitions' writes refused: which, and the first error. */
class PartitionsFailed extends Error {
  constructor(
    readonly partitions: number[],
    cause: unknown,
  ) {
    super((cause as Error)?.message ?? String(cause));
  }
}

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

export class DispatchForwarder {
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
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private announced?: Promise<unknown>;

  constructor(
    /** `events`: one queue per event partition, partition i at index i (queue-names.ts). */
    private readonly queues: { interactions: Queue; events: readonly Queue[] },
    private readonly options: ForwarderOptions,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {}

  /** Called for every dispatch the shard receives. Cheap: no I/O on this path. */
  accept(type: string, d: unknown, shardId: number, seq: number, sessionId?: string): void {
    this.metrics.received.inc({ type });
    if (!this.options.events.has(type) || this.closed) {
      this.metrics.dropped.inc({ type, reason: this.closed ? 'shutting_down' : 'not_configured' });
      return;
    }
    if (this.buffered() >= this.options.bufferLimit) {
      this.metrics.dropped.inc({ type, reason: 'buffer_full' });
      this.metrics.overflow.inc();
      this.log.warn(
        { type, shard: shardId, seq, buffered: this.buffered() },
        'buffer full: dispatch dropped',
      );
      return;
    }
    const dispatch: BatchedDispatch = {
      t: type,
      d,
      shardId,
      seq,
      receivedAt: Date.now(),
      generation: this.options.generation,
      key: dedupKey(type, d, { sessionId, seq }),
    };
    if (type === 'INTERACTION_CREATE') this.buffer.push({ queue: 'interactions', dispatch });
    else
      this.buffer.push({
        queue: 'events',
        dispatch,
        partition: eventPartitionOf(dispatch, this.queues.events.length),
      });
    this.metrics.bufferDepth.set(this.buffered());
    if (this.unsent() >= this.options.batchSize) this.flushSoon(0);
    else this.flushSoon(this.options.batchDelayMs);
  }

  private flushSoon(delayMs: number): void {
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
    while (this.inFlight.length < this.options.batchesInFlight) {
      const unsent = this.unsent();
      if (unsent === 0 || (unsent < this.options.batchSize && this.inFlight.length > 0)) return;
      const batch = this.buffer.slice(this.next, this.next + this.options.batchSize);
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
    if (answer.error !== undefined) this.metrics.enqueueErrors.inc();
    while (this.inFlight[0]?.answer && this.inFlight[0].answer.error === undefined) {
      const done = this.inFlight.shift()!;
      this.dropSent(done.batch.length);
      this.sent(done.batch, done.started);
    }
    const failed = this.inFlight.find((f) => f.answer?.error !== undefined);
    if (!failed) {
      this.pump();
      this.notifyIfIdle();
      return;
    }
    if (this.inFlight.some((f) => !f.answer)) return;
    // What got through behind the failed batch is counted; the failed ones are unsent again.
    const retry: Pending[] = [];
    for (const f of this.inFlight)
      if (f.answer!.error === undefined) this.sent(f.batch, f.started);
      else retry.push(...f.batch);
    this.buffer = [...retry, ...this.buffer.slice(this.next)];
    this.head = this.next = 0;
    this.inFlight = [];
    this.metrics.bufferDepth.set(this.buffered());
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
        const batch = this.buffer.slice(this.head, this.head + this.options.batchSize);
        const started = performance.now();
        try {
          await this.addBatch(batch);
        } catch (err) {
          this.metrics.enqueueErrors.inc();
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
      this.notifyIfIdle();
    }
  }

  /** Counts a failure of the head batch, then isolates it or waits before the next attempt. */
  private async afterFailure(error: unknown): Promise<void> {
    this.failuresInARow += 1;
    if (
      this.failuresInARow >= FAILURES_BEFORE_ISOLATING &&
      (await this.redisAcceptsWrites((error as PartitionsFailed).partitions ?? [0]))
    ) {
      await this.sendOneByOne(this.buffer.slice(this.head, this.head + this.options.batchSize));
      return;
    }
    this.log.warn(
      { err: (error as Error).message, buffered: this.buffered(), retryInMs: this.retryDelayMs },
      'enqueue failed; keeping dispatches buffered',
    );
    await new Promise((r) => setTimeout(r, this.retryDelayMs));
    this.retryDelayMs = Math.min(2_000, this.retryDelayMs * 2);
  }

  private notifyIfIdle(): void {
    if (this.buffered() === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** `batch` is in the queue (and off the buffer): count it. */
  private sent(batch: Pending[], started: number): void {
    this.retryDelayMs = 100;
    this.failuresInARow = 0;
    this.metrics.batchSize.observe(batch.length);
    this.metrics.enqueueLatency.observe((performance.now() - started) / 1000);
    // One counter update per type and batch, not per dispatch (label lookups are not free).
    for (const [type, n] of countByType(batch.map((p) => p.dispatch)))
      this.metrics.forwarded.inc({ type }, n);
    this.metrics.bufferDepth.set(this.buffered());
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
      if (!(await this.redisAcceptsWrites([partitionOf(p)]))) return;
      this.dropSent(1);
      this.failuresInARow = 0;
      this.metrics.dropped.inc({ type: p.dispatch.t, reason: 'rejected' });
      this.log.error(
        {
          err: (error as Error).message,
          type: p.dispatch.t,
          shard: p.dispatch.shardId,
          seq: p.dispatch.seq,
          key: p.dispatch.key,
        },
        'the queue refuses this dispatch while Redis answers: dropped',
      );
      this.metrics.bufferDepth.set(this.buffered());
    }
  }

  /**
   * Whether the masters of `partitions` each accept a write within a second: an outage, or a
   * refused batch? Each partition is probed in its own slot: on a Redis Cluster one master may
   * refuse writes (maxmemory, a replica just promoted) while the others accept them.
   */
  private async redisAcceptsWrites(partitions: readonly number[]): Promise<boolean> {
    const probes = partitions.map((p) => this.options.probeWrite(p).then(() => true));
    return within(
      Promise.all(probes).then(() => true),
      1_000,
      () => false,
    ).catch(() => false);
  }

  /** The `n` dispatches at the head are in the queue. */
  private dropSent(n: number): void {
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

  /**
   * One job per event partition the batch touches (and the interactions'), the parts not yet
   * written. Should some writes fail, the parts that landed are marked written and only the
   * others are written again (a copy of a healthy part on every retry would grow its backlog and,
   * once the refusal outlasted the claims' window, run again).
   */
  private async addBatch(batch: Pending[]): Promise<void> {
    await this.announce().catch((err: unknown) => {
      throw new PartitionsFailed([0], err);
    });
    const writes = [...byPartition(batch)].flatMap(([partition, part]) => {
      const jobs = bulkJobs(part);
      const written = (queue: Pending['queue']) => () => {
        for (const p of part) if (p.queue === queue) p.written = true;
      };
      return [
        jobs.interactions &&
          addJobs(this.queues.interactions, jobs.interactions).then(written('interactions')),
        jobs.events && addJobs(this.queues.events[partition]!, jobs.events).then(written('events')),
      ];
    });
    const failure = (await Promise.allSettled(writes)).find((r) => r.status === 'rejected');
    if (failure)
      throw new PartitionsFailed(
        [...new Set(batch.filter((p) => !p.written).map(partitionOf))],
        failure.reason,
      );
  }

  /** `beforeFirstWrite`, once it succeeded; a failure is tried again with the next attempt. */
  private announce(): Promise<unknown> {
    const write = this.options.beforeFirstWrite;
    if (!write) return Promise.resolve();
    this.announced ??= write().catch((err: unknown) => {
      this.announced = undefined;
      throw err;
    });
    return this.announced;
  }

  /**
   * The sequence a session may be resumed from without losing anything: just before the oldest
   * dispatch of that shard that is not yet in the queue. (Persisting the received sequence
   * instead could skip buffered dispatches if the process died before enqueueing them.)
   */
  safeSequence(shardId: number, receivedSeq: number): number {
    let oldest = Infinity;
    for (let i = this.head; i < this.buffer.length; i++) {
      const p = this.buffer[i]!;
      if (p.dispatch.shardId === shardId && p.dispatch.seq < oldest) oldest = p.dispatch.seq;
    }
    return oldest === Infinity ? receivedSeq : Math.min(receivedSeq, oldest - 1);
  }

  /** Dispatches not yet in the queue (buffered or being written). */
  buffered(): number {
    return this.buffer.length - this.head;
  }

  private unsent(): number {
    return this.buffer.length - this.next;
  }

  /** Stops accepting new dispatches (they are counted as dropped with reason shutting_down). */
  close(): void {
    this.closed = true;
  }

  /** Stops accepting, then waits until everything buffered is enqueued (or the deadline passes). */
  async drain(deadlineMs: number): Promise<boolean> {
    this.closed = true;
    if (this.buffered() === 0) return true;
    this.flushSoon(0);
    const done = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    return within(done, deadlineMs, () => false);
  }
}
