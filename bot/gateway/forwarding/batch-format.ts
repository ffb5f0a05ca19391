// How the gateway writes a batch of events: as a body beside its job, which this release's
// workers read, or inline in the job, which every release reads. Bodies keep the dispatches out of
// BullMQ's scripts (queue-names.ts, DispatchBatchRef); a worker of an earlier release would fail
// such a job on every attempt. Whether one is connected is the workers' look at `CLIENT LIST`,
// once per interval for the bot (bot/worker/processing/claim-format.ts), which keeps a flag set
// while none is; a gateway only reads the flag. So batches are inline until the first read, while
// no worker of this release has looked lately (none running, or a Redis that refuses CLIENT LIST),
// during a rolling upgrade until the last old worker is gone, and when the read fails.
import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';
import type { RedisClient } from '../../configuration/redis-connection.js';
import { batchBodiesFlagKey } from '../../queues/queue-names.js';
import { PeriodicCheck } from '../../timing/periodic-check.js';
import { within } from '../../timing/within.js';

/** How often a gateway cluster process reads the flag, and how long a read may take. */
export const BATCH_FORMAT_LOOK_MS = 15_000;
const BATCH_FORMAT_READ_TIMEOUT_MS = 5_000;

export interface BatchFormatWatchOptions {
  redis: RedisClient;
  /** The bot's queue prefix, where the workers keep the flag. */
  botPrefix: string;
  /** Set to 1 while bodies are written, else 0. */
  gauge?: Gauge;
  log: Logger;
}

export class BatchFormatWatch {
  private bodies = false;
  private readonly checks: PeriodicCheck;

  constructor(private readonly o: BatchFormatWatchOptions) {
    this.checks = new PeriodicCheck(() => this.look(), BATCH_FORMAT_LOOK_MS);
  }

  /** Whether batches are written as bodies now. */
  batchBodies(): boolean {
    return this.bodies;
  }

  /** One read of the flag; bounded, and inline when it fails or does not answer in time. */
  async look(): Promise<void> {
    let bodies: boolean;
    try {
      const flag = this.o.redis.get(batchBodiesFlagKey(this.o.botPrefix));
      bodies = (await within(flag, BATCH_FORMAT_READ_TIMEOUT_MS, () => null)) !== null;
    } catch (err) {
      this.o.log.debug({ err: (err as Error).message }, 'batch format read failed; writing inline');
      bodies = false;
    }
    this.o.gauge?.set(bodies ? 1 : 0);
    if (this.bodies === bodies) return;
    this.bodies = bodies;
    this.o.log.info(
      { batchBodies: bodies },
      bodies
        ? 'the workers say every consumer of the event queues reads batch bodies: writing batches as bodies'
        : 'writing batches inline (a worker of an earlier release is connected, or none of this one has looked lately)',
    );
  }

  start(): void {
    this.checks.start();
  }

  async stop(timeoutMs: number): Promise<void> {
    await this.checks.stop(timeoutMs);
  }
}
