// Which claim format the workers connected now need. This release keeps the marks in hashes per
// time bucket (dispatch-claims.ts); the release before kept a key per dispatch and does not read
// the buckets. While a worker of that release consumes a bot's batches (a rolling upgrade, a
// rollback), this one writes and reads the per-key marks too, and for one window after the last
// such worker was seen, since its marks live that long. What tells the releases apart is
// BullMQ's client name: this release's batch consumers are named workers (CLAIMS_WORKER_NAME);
// the earlier release's are unnamed, so their blocking connection is named
// `<prefix>:<base64 of the queue>` exactly. Looked at once before consuming and then every
// `everyMs`; a Redis that refuses CLIENT LIST counts as one where old workers may be connected.
import type { Logger } from 'pino';
import type { RedisClient } from '../../configuration/redis-connection.js';
import { QUEUES } from '../../queues/queue-names.js';
import { PeriodicCheck } from '../../timing/periodic-check.js';
import type { DispatchClaims } from './dispatch-claims.js';

/** The BullMQ worker name of this release's consumers of the events queues. */
export const CLAIMS_WORKER_NAME = 'bucketed-claims';

/** The client name of an earlier release's (unnamed) consumer of the batches under `prefix`. */
export const oldWorkerClientName = (prefix: string) =>
  `${prefix}:${Buffer.from(QUEUES.events).toString('base64')}`;

/** Whether any connection of these `CLIENT LIST` answers has one of `names`. */
export function anyClientNamed(lists: readonly string[], names: ReadonlySet<string>): boolean {
  return lists.some((list) =>
    list.split('\n').some((line) => {
      const name = / name=(\S*)/.exec(line)?.[1];
      return name !== undefined && names.has(name);
    }),
  );
}

/** `CLIENT LIST` of the server, or of every master of a Redis Cluster. */
async function clientLists(redis: RedisClient): Promise<string[]> {
  const nodes = 'nodes' in redis ? redis.nodes('master') : [redis];
  return Promise.all(nodes.map(async (node) => String(await node.client('LIST'))));
}

export interface PerKeyMarksWatchOptions {
  redis: RedisClient;
  /** The queue prefixes whose batch consumers to look for (the bot's and its partitions'). */
  prefixes: readonly string[];
  /** The claims in use when a check runs (every prefix the process claims under). */
  claims: () => Iterable<DispatchClaims>;
  everyMs: number;
  log: Logger;
}

export class PerKeyMarksWatch {
  private readonly checks: PeriodicCheck;
  private warned = false;
  private seen = false;

  constructor(private readonly o: PerKeyMarksWatchOptions) {
    this.checks = new PeriodicCheck(
      () =>
        this.check().catch((err: unknown) =>
          o.log.warn(
            { err: (err as Error).message },
            'could not look for workers with per-key claims; trying again',
          ),
        ),
      o.everyMs,
    );
  }

  /**
   * Looks now; resolves once the per-key marks are kept if they must be. Awaited before consuming:
   * a failure then stops the start.
   */
  async check(): Promise<void> {
    const names = new Set(this.o.prefixes.map(oldWorkerClientName));
    let old: boolean;
    try {
      old = anyClientNamed(await clientLists(this.o.redis), names);
    } catch (err) {
      if (!this.warned)
        this.o.log.warn(
          { err: (err as Error).message },
          'CLIENT LIST refused: claims keep the per-key marks of the earlier release too',
        );
      this.warned = true;
      old = true;
    }
    if (old !== this.seen)
      this.o.log.info(
        { oldWorkers: old },
        old
          ? 'workers of the release with per-key claims are connected: writing and reading those marks too'
          : 'no worker of the release with per-key claims connected; their marks are read for one more window',
      );
    this.seen = old;
    if (old) await Promise.all([...this.o.claims()].map((c) => c.keepPerKeyMarks()));
  }

  start(): void {
    this.checks.start();
  }

  async stop(timeoutMs: number): Promise<void> {
    await this.checks.stop(timeoutMs);
  }
}
