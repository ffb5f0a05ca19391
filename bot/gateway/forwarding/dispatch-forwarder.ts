// The gateway forwarder: the only thing the Ear does with a dispatch. Configured types are
// buffered and written in small batches (by count and by a few ms): the events of a batch become
// one BullMQ job, each interaction its own job on its own queue (job-batches.ts); every other
// type is dropped and counted. Each event partition batches on its own (forwarder-lane.ts), so
// its jobs stay full however many partitions a burst touches; a guild's events are in one
// partition, in order. While Redis is unavailable, dispatches wait in a bounded buffer (shared
// by the partitions) and are flushed when it returns; what does not fit is refused and left to
// Discord, which replays it when the shard resumes once the buffer has room
// (overflow-replays.ts): lost only if the session cannot be resumed, and then counted and logged.
// Under load several batches per partition are written at once (`batchesInFlight`, pipelined on
// the partition's master's connection, so P x N on one Redis; why: docs/gateway.md, "The
// forwarder"). A dispatch still counts as sent only when Redis answered for its batch, and
// leaves the buffer only then.
import type { Queue } from 'bullmq';
import type { Logger } from '../../observability/logger.js';
import { eventPartitionOf, type BatchedDispatch } from '../../queues/queue-names.js';
import { dedupKey } from './dedup-key.js';
import { ForwarderLane, type BatchBodies } from './forwarder-lane.js';
import { OverflowReplays, type LostDispatches } from './overflow-replays.js';
import type { GatewayMetrics } from '../metrics.js';
import { within } from '../../timing/within.js';

export interface ForwarderOptions {
  events: Set<string>;
  generation: number;
  batchSize: number;
  batchDelayMs: number;
  /** Batches each partition writes at once (pipelined) while full batches are waiting. */
  batchesInFlight: number;
  /** Dispatches buffered at most, all partitions together. */
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
  /**
   * Writes each batch of events as a body beside its job while `enabled()` (asked per batch: the
   * gateway's BatchFormatWatch, while the workers say every consumer reads them), with
   * `redis`, the queues' client. Inline when absent.
   */
  batchBodies?: BatchBodies;
  /**
   * Asks a shard whose dispatches were refused (buffer full) to reconnect and RESUME, once the
   * buffer is at most half full: Discord replays what was refused. The shard's next connection
   * must be reported with `shardConnected`. Rejects if it could not: asked again at the next
   * chance.
   */
  resumeShard?: (shardId: number) => Promise<void>;
}

export class DispatchForwarder {
  /** Lane i writes event partition i's queue; lane 0 also the interactions. */
  private readonly lanes: ForwarderLane[];
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private announced?: Promise<unknown>;
  /** Dispatches in every lane's buffer: kept as a running count, not summed per dispatch. */
  private total = 0;
  private readonly replays: OverflowReplays;

  constructor(
    /** `events`: one queue per event partition, partition i at index i (queue-names.ts). */
    queues: { interactions: Queue; events: readonly Queue[] },
    private readonly options: ForwarderOptions,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {
    const ctx = {
      ...options,
      beforeWrite: () => this.announce(),
      metrics,
      log,
      buffered: () => this.total,
      released: (n: number) => {
        this.total -= n;
        // Not once closed: the process is going away, whoever resumes its sessions gets the replay.
        if (this.replays.size > 0 && !this.closed && this.total <= this.options.bufferLimit / 2)
          this.askResumes();
      },
      maybeIdle: () => this.notifyIfIdle(),
    };
    this.replays = new OverflowReplays((lost) => this.countLost(lost));
    this.lanes = queues.events.map(
      (events, partition) =>
        new ForwarderLane(
          partition === 0 ? { interactions: queues.interactions, events } : { events },
          partition,
          ctx,
        ),
    );
  }

  /** Called for every dispatch the shard receives. Cheap: no I/O on this path. */
  accept(type: string, d: unknown, shardId: number, seq: number, sessionId?: string): void {
    this.metrics.received.inc({ type });
    if (!this.options.events.has(type) || this.closed) {
      this.metrics.dropped.inc({ type, reason: this.closed ? 'shutting_down' : 'not_configured' });
      return;
    }
    const buffered = this.total;
    const full = buffered >= this.options.bufferLimit;
    // Only the shards refusing now pay for more than the size check.
    const admission =
      full || this.replays.size > 0 ? this.replays.admit(shardId, type, seq, sessionId, full) : 'accept';
    if (admission !== 'accept') {
      if (admission === 'refuse') this.refused(type, shardId, seq, buffered);
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
    this.total = buffered + 1;
    if (type === 'INTERACTION_CREATE') this.lanes[0]!.push({ queue: 'interactions', dispatch });
    else {
      const partition = eventPartitionOf(dispatch, this.lanes.length);
      this.lanes[partition]!.push({ queue: 'events', dispatch });
    }
    this.metrics.bufferDepth.set(buffered + 1);
  }

  /** One log line per shard and refusal episode, not per dispatch. */
  private refused(type: string, shardId: number, seq: number, buffered: number): void {
    this.metrics.overflow.inc();
    if (this.replays.resumeBound(shardId) === seq - 1)
      this.log.warn(
        { type, shard: shardId, seq, buffered },
        "buffer full: refusing this shard's dispatches until it resumes (Discord replays them)",
      );
  }

  private askResumes(): void {
    const resume = this.options.resumeShard;
    if (!resume) return;
    for (const shardId of this.replays.takeResumes()) {
      this.log.info({ shard: shardId }, 'buffer has room: resuming the shard for the dispatches it refused');
      resume(shardId).catch((err: Error) => {
        this.log.error({ shard: shardId, err: err.message }, 'could not resume the shard: asked again later');
        this.replays.resumeFailed(shardId);
      });
    }
  }

  private countLost(lost: LostDispatches): void {
    let n = 0;
    const reason = lost.reason === 'replay_gap' ? 'replay_gap' : 'buffer_full';
    for (const [type, count] of lost.byType) {
      this.metrics.dropped.inc({ type, reason }, count);
      n += count;
    }
    this.log.error(
      { shard: lost.shardId, fromSeq: lost.firstRefused, lost: n, reason: lost.reason },
      lost.reason === 'session_not_resumed'
        ? 'dispatches refused while the buffer was full are lost: the session was not resumed'
        : "dispatches refused while the buffer was full are lost: Discord's replay began after them",
    );
  }

  /**
   * The shard's session as @discordjs/ws updates it (every dispatch, READY, or null when it is
   * cleared): a refused shard whose session was replaced or cleared will never get its replay.
   */
  sessionUpdated(shardId: number, sessionId: string | undefined): void {
    if (this.replays.size > 0) this.replays.session(shardId, sessionId);
  }

  /**
   * A new connection of `shardId` (its HELLO): what comes on it is a replay, then live events.
   * Before its HELLO, so no dispatch of the connection comes first.
   */
  shardConnected(shardId: number): void {
    this.replays.connected(shardId);
  }

  /**
   * The session a shard resumes with: its sequence no later than just before the first
   * dispatch the forwarder refused (the same object when none was refused).
   */
  resumable<T extends { sequence: number }>(shardId: number, session: T | null): T | null {
    // Asked on every dispatch and heartbeat (@discordjs/ws): nothing to look up in the common case.
    if (this.replays.size === 0) return session;
    const bound = this.replays.resumeBound(shardId);
    return session && session.sequence > bound ? { ...session, sequence: bound } : session;
  }

  private notifyIfIdle(): void {
    if (this.total === 0) for (const w of this.idleWaiters.splice(0)) w();
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
   * dispatch of that shard that is not yet in the queue, in any partition, or refused. (Persisting the
   * received sequence instead could skip buffered dispatches if the process died before
   * enqueueing them.)
   */
  safeSequence(shardId: number, receivedSeq: number): number {
    let oldest = this.replays.resumeBound(shardId) + 1;
    for (const lane of this.lanes) oldest = Math.min(oldest, lane.oldestUnsent(shardId));
    return oldest === Infinity ? receivedSeq : Math.min(receivedSeq, oldest - 1);
  }

  /** Dispatches not yet in the queue (buffered or being written), all partitions together. */
  buffered(): number {
    return this.total;
  }

  /** Stops accepting new dispatches (they are counted as dropped with reason shutting_down). */
  close(): void {
    this.closed = true;
  }

  /** Stops accepting, then waits until everything buffered is enqueued (or the deadline passes). */
  async drain(deadlineMs: number): Promise<boolean> {
    this.closed = true;
    if (this.buffered() === 0) return true;
    for (const lane of this.lanes) lane.flushSoon(0);
    const done = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    return within(done, deadlineMs, () => false);
  }
}
