// How the gateway writes a batch of events: as a body beside its job, which this release's
// workers read, or inline in the job, which every release reads. Bodies keep the dispatches out of
// BullMQ's scripts (queue-names.ts, DispatchBatchRef); a worker of an earlier release would fail
// such a job on every attempt. So bodies are written only while a look at who consumes the bot's
// event queues (`CLIENT LIST`: BullMQ names each consumer's connection) finds no consumer of an
// earlier release: inline from the start until the first look, during a rolling upgrade until the
// last old worker is gone, and for good where Redis refuses CLIENT LIST (an ACL).
import type { Logger } from 'pino';
import type { RedisClient } from '../../configuration/redis-connection.js';
import { anyClientNamed, clientLists, isRefusal } from '../../queues/connected-consumers.js';
import { BATCH_CONSUMERS, consumerClientName, QUEUES } from '../../queues/queue-names.js';
import { PeriodicCheck } from '../../timing/periodic-check.js';

/** How often a gateway cluster looks (a consumer that connects in between may see bodies that long). */
export const BATCH_FORMAT_LOOK_MS = 15_000;

/** The client names of consumers that read only inline batches, under the partitions' prefixes. */
export function inlineOnlyConsumerNames(prefixes: readonly string[]): Set<string> {
  return new Set(
    prefixes.flatMap((p) => [
      consumerClientName(p, QUEUES.events),
      ...BATCH_CONSUMERS.inlineOnly.map((name) => consumerClientName(p, QUEUES.events, name)),
    ]),
  );
}

export interface BatchFormatWatchOptions {
  redis: RedisClient;
  /** The prefixes of the bot's event partitions' queues. */
  prefixes: readonly string[];
  everyMs?: number;
  log: Logger;
}

export class BatchFormatWatch {
  private bodies = false;
  private refused = false;
  private readonly names: Set<string>;
  private readonly checks: PeriodicCheck;

  constructor(private readonly o: BatchFormatWatchOptions) {
    this.names = inlineOnlyConsumerNames(o.prefixes);
    this.checks = new PeriodicCheck(() => this.look(), o.everyMs ?? BATCH_FORMAT_LOOK_MS);
  }

  /** Whether batches are written as bodies now. */
  batchBodies(): boolean {
    return this.bodies;
  }

  /** One look; an error other than a refusal leaves the format as it is until the next. */
  async look(): Promise<void> {
    if (this.refused) return;
    let old: boolean;
    try {
      old = anyClientNamed(await clientLists(this.o.redis), this.names);
    } catch (err) {
      if (isRefusal(err)) {
        this.refused = true;
        this.bodies = false;
        this.o.log.warn(
          { err: (err as Error).message },
          'CLIENT LIST is refused: batches are written inline (workers of earlier releases cannot be ' +
            "seen), which costs Redis more per dispatch; allow client|list to the bot's Redis user to end it",
        );
      } else this.o.log.debug({ err: (err as Error).message }, 'batch format look failed; unchanged');
      return;
    }
    if (this.bodies === !old) return;
    this.bodies = !old;
    this.o.log.info(
      { batchBodies: this.bodies },
      old
        ? 'a worker of an earlier release consumes the event queues: writing batches inline'
        : 'every consumer of the event queues reads batch bodies: writing batches as bodies',
    );
  }

  start(): void {
    this.checks.start();
  }

  async stop(timeoutMs: number): Promise<void> {
    await this.checks.stop(timeoutMs);
  }
}
