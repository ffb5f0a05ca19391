// How the gateway writes a batch of events: as a body beside its job, compressed (`deflate-raw`)
// or as JSON text (`json`), or inline in the job, which every release reads. Bodies keep the
// dispatches out of BullMQ's scripts (queue-names.ts, DispatchBatchRef); a worker of an earlier
// release that cannot read the format would fail such a job on every attempt. Whether one is
// connected is the workers' look at `CLIENT LIST`, once per interval for the bot
// (bot/worker/processing/claim-format.ts), which keeps a flag set, naming the encoding every
// connected consumer reads, while none needs inline batches; a gateway only reads the flag. So
// batches are inline until the first read, while no worker of this release has looked lately
// (none running, or a Redis that refuses CLIENT LIST), during a rolling upgrade from a release
// without bodies until the last old worker is gone, and when the read fails; bodies are `json`
// during an upgrade from the release that wrote only those.
import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';
import type { RedisClient } from '../../configuration/redis-connection.js';
import { batchBodiesFlagKey, batchBodyEncodingOf, type BatchBodyEncoding } from '../../queues/queue-names.js';
import { PeriodicCheck } from '../../timing/periodic-check.js';
import { within } from '../../timing/within.js';

/** How often a gateway cluster process reads the flag, and how long a read may take. */
export const BATCH_FORMAT_LOOK_MS = 15_000;
const BATCH_FORMAT_READ_TIMEOUT_MS = 5_000;

export interface BatchFormatWatchOptions {
  redis: RedisClient;
  /** The bot's queue prefix, where the workers keep the flag. */
  botPrefix: string;
  /** Set to 0 while batches are inline, 1 while bodies are `json`, 2 while `deflate-raw`. */
  gauge?: Gauge;
  log: Logger;
}

/** The gauge's value for each format (metrics.ts, shardwarden_gateway_batch_bodies). */
const GAUGE: Record<BatchBodyEncoding | 'inline', number> = { inline: 0, json: 1, 'deflate-raw': 2 };

export class BatchFormatWatch {
  private encoding?: BatchBodyEncoding;
  private readonly checks: PeriodicCheck;

  constructor(private readonly o: BatchFormatWatchOptions) {
    this.checks = new PeriodicCheck(() => this.look(), BATCH_FORMAT_LOOK_MS);
  }

  /** The encoding batches are written as bodies in now; undefined: inline. */
  bodyEncoding(): BatchBodyEncoding | undefined {
    return this.encoding;
  }

  /** One read of the flag; bounded, and inline when it fails or does not answer in time. */
  async look(): Promise<void> {
    let encoding: BatchBodyEncoding | undefined;
    try {
      const flag = await within(
        this.o.redis.get(batchBodiesFlagKey(this.o.botPrefix)),
        BATCH_FORMAT_READ_TIMEOUT_MS,
        () => null,
      );
      encoding = flag === null ? undefined : batchBodyEncodingOf(flag);
    } catch (err) {
      this.o.log.debug({ err: (err as Error).message }, 'batch format read failed; writing inline');
      encoding = undefined;
    }
    this.o.gauge?.set(GAUGE[encoding ?? 'inline']);
    if (this.encoding === encoding) return;
    this.encoding = encoding;
    this.o.log.info(
      { batchBodies: encoding ?? false },
      encoding
        ? `the workers say every consumer of the event queues reads ${encoding} batch bodies: writing batches as those`
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
