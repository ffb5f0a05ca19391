// The forwarder's BullMQ queues, opened when first needed rather than at the cluster's start.
// Loading BullMQ is the largest single part of a cluster process's start (about 80 ms of CPU of
// the 0.3 s its modules take; the startup milestones of benchmarks/cold-start.ts show modules
// are three quarters of a cluster's CPU to READY), and nothing is written before the shards'
// first dispatches: the cluster opens them once its first shard is READY, or when the first
// batch is written if that comes first. (Opened right after the first IDENTIFY instead, the
// load sat between the IDENTIFY and READY: 0.1-1.5 s more to READY on a loaded machine, once
// 5.9 s.) Dispatches arriving meanwhile wait in the forwarder's buffer, as for any slow write.
import type { Queue } from 'bullmq';
import type { RedisClient } from '../../configuration/redis-connection.js';
import type { Logger } from '../../observability/logger.js';
import { eventPartitionPrefixes, QUEUES, queuePrefix, type BotRef } from '../../queues/queue-names.js';

/** `events`: one queue per event partition, partition i at index i (queue-names.ts). */
export interface ForwarderQueues {
  interactions: Queue;
  events: readonly Queue[];
}

export class DeferredQueues {
  private opening?: Promise<ForwarderQueues>;

  constructor(
    /** How many event queues `open` gives (the forwarder partitions by it before they exist). */
    readonly partitions: number,
    private readonly create: () => Promise<ForwarderQueues>,
  ) {}

  /** The queues, created on the first call; a failed creation is tried again on the next. */
  open(): Promise<ForwarderQueues> {
    this.opening ??= this.create().catch((err: unknown) => {
      this.opening = undefined;
      throw err;
    });
    return this.opening;
  }

  /** Closes the queues if they were opened. */
  async close(): Promise<void> {
    const queues = await this.opening?.catch(() => undefined);
    if (!queues) return;
    await Promise.all([queues.interactions, ...queues.events].map((q) => q.close().catch(() => undefined)));
  }
}

/** The gateway's queues on one shared connection: interactions, and one per event partition. */
export function forwarderQueues(
  connection: RedisClient,
  bot: BotRef,
  partitions: number,
  log: Logger,
): DeferredQueues {
  return new DeferredQueues(partitions, async () => {
    const { Queue } = await import('bullmq');
    const queues = {
      interactions: new Queue(QUEUES.interactions, { connection, prefix: queuePrefix(bot) }),
      // One queue per partition, each under its own hash tag (queue-names.ts).
      events: eventPartitionPrefixes(bot, partitions).map(
        (prefix) => new Queue(QUEUES.events, { connection, prefix }),
      ),
    };
    for (const q of [queues.interactions, ...queues.events])
      q.on('error', (err) => log.debug({ err: err.message }, 'queue connection error'));
    return queues;
  });
}
