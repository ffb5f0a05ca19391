// The gateway forwarder: the only thing the Ear does with a dispatch. Configured types are
// buffered and written in small batches (by count and by a few ms): the events of a batch become
// one BullMQ job, each interaction its own job on its own queue (job-batches.ts); every other
// type is dropped and counted. While Redis is unavailable, dispatches wait in a bounded buffer and are flushed
// in order when it returns; what does not fit is counted and logged, never dropped silently.
// A batch the queue keeps refusing while Redis accepts writes is not an outage: it is sent one
// dispatch at a time and only what is still refused is dropped (counted, logged), so one bad
// dispatch cannot hold back everything behind it. (Reads are no test: Redis at maxmemory, a
// read-only replica or a failing disk refuse writes and still answer reads.)
import type { Queue } from 'bullmq';
import type { Logger } from '../../observability/logger.js';
import { eventPartitionOf, type BatchedDispatch } from '../../queues/queue-names.js';
import { dedupKey } from './dedup-key.js';
import { bulkJobs, byPartition, partitionOf, type Pending } from './job-batches.js';
import { countByType } from '../../queues/count-by-type.js';
import type { GatewayMetrics } from '../metrics.js';
import { within } from '../../timing/within.js';

export interface ForwarderOptions {
  events: Set<string>;
  generation: number;
  batchSize: number;
  batchDelayMs: number;
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

export class DispatchForwarder {
  // A FIFO: entries before `head` are sent. Taking a batch off the front of a plain array
  // (slice + splice) moved the whole backlog on every batch, which showed in profiles once
  // a burst made the buffer deep; the sent prefix is now dropped only now and then.
  private buffer: Pending[] = [];
  private head = 0;
  private flushing = false;
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
    if (this.buffered() >= this.options.batchSize) this.flushSoon(0);
    else this.flushSoon(this.options.batchDelayMs);
  }

  private flushSoon(delayMs: number): void {
    if (this.flushing) return;
    if (delayMs === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.flush();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.buffered() > 0) {
        const batch = this.buffer.slice(this.head, this.head + this.options.batchSize);
        const started = performance.now();
        try {
          await this.addBatch(batch);
        } catch (err) {
          this.metrics.enqueueErrors.inc();
          this.failuresInARow += 1;
          if (
            this.failuresInARow >= FAILURES_BEFORE_ISOLATING &&
            (await this.redisAcceptsWrites((err as PartitionsFailed).partitions ?? [0]))
          ) {
            await this.sendOneByOne(batch);
            continue;
          }
          // Keep the batch at the head and try again: order is preserved, nothing is lost.
          this.log.warn(
            { err: (err as Error).message, buffered: this.buffered(), retryInMs: this.retryDelayMs },
            'enqueue failed; keeping dispatches buffered',
          );
          await new Promise((r) => setTimeout(r, this.retryDelayMs));
          this.retryDelayMs = Math.min(2_000, this.retryDelayMs * 2);
          continue;
        }
        this.sent(batch, started);
      }
    } finally {
      this.flushing = false;
      if (this.buffered() === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** The head `batch` is in the queue: take it off the buffer and count it. */
  private sent(batch: Pending[], started: number): void {
    this.retryDelayMs = 100;
    this.failuresInARow = 0;
    this.dropSent(batch.length);
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

  private dropSent(n: number): void {
    this.head += n;
    if (this.head === this.buffer.length) {
      this.buffer = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.buffer.length) {
      this.buffer = this.buffer.slice(this.head);
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
          this.queues.interactions.addBulk(jobs.interactions).then(written('interactions')),
        jobs.events && this.queues.events[partition]!.addBulk(jobs.events).then(written('events')),
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

  buffered(): number {
    return this.buffer.length - this.head;
  }

  /** Stops accepting new dispatches (they are counted as dropped with reason shutting_down). */
  close(): void {
    this.closed = true;
  }

  /** Stops accepting, then waits until everything buffered is enqueued (or the deadline passes). */
  async drain(deadlineMs: number): Promise<boolean> {
    this.closed = true;
    if (this.buffered() === 0 && !this.flushing) return true;
    this.flushSoon(0);
    const done = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    return within(done, deadlineMs, () => false);
  }
}
