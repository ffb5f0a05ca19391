// Event partitions the gateways may have written that this worker does not consume: those
// between its own count and the highest count any gateway of the bot used (the bot's high-water
// key, partition-high-water.ts), after the count was lowered or while gateways run ahead of the
// workers. One GET every `checkEveryMs`; a partition's drain (LegacyQueueDrain: consumers while
// it holds jobs or saw activity) is created the first time it falls in that range, so a bot that
// never used more than its workers' count costs that one GET and nothing else.
import type { Logger } from 'pino';
import type { RedisClient } from '../../configuration/redis-connection.js';
import type { BotRef } from '../../queues/queue-names.js';
import { partitionsToDrain, readEventPartitions } from '../../queues/partition-high-water.js';
import { PeriodicCheck } from '../../timing/periodic-check.js';

/** One partition's drain (a LegacyQueueDrain on its prefix). */
export interface PartitionDrain {
  start(): void;
  draining(): boolean;
  close(timeoutMs: number): Promise<boolean>;
}

export interface RetiredPartitionsOptions {
  redis: RedisClient;
  bot: BotRef;
  /** The partitions this worker consumes (0..own-1). */
  own: number;
  checkEveryMs: number;
  drain: (partition: number) => PartitionDrain;
  log: Logger;
}

export class RetiredPartitions {
  private readonly drains = new Map<number, PartitionDrain>();
  private stopped = false;
  private readonly checks: PeriodicCheck;

  constructor(private readonly o: RetiredPartitionsOptions) {
    this.checks = new PeriodicCheck(() => this.check(), o.checkEveryMs);
  }

  start(): void {
    this.checks.start();
  }

  private async check(): Promise<void> {
    try {
      const highWater = await readEventPartitions(this.o.redis, this.o.bot);
      if (this.stopped) return;
      for (const partition of partitionsToDrain(this.o.own, highWater)) {
        if (this.drains.has(partition)) continue;
        const drain = this.o.drain(partition);
        this.drains.set(partition, drain);
        drain.start();
      }
    } catch (err) {
      this.o.log.warn(
        { err: (err as Error).message },
        'could not read how many event partitions the gateways used; trying again',
      );
    }
  }

  /** The partitions being consumed now (for /readyz details and tests). */
  draining(): number[] {
    return [...this.drains].filter(([, d]) => d.draining()).map(([p]) => p);
  }

  /** Stops checking and closes every drain; false if one left jobs in flight. */
  async close(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    await this.checks.stop(timeoutMs);
    const closed = await Promise.all([...this.drains.values()].map((d) => d.close(timeoutMs)));
    return closed.every(Boolean);
  }
}
