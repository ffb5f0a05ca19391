// The claims' upkeep, once per interval for a bot (one worker looks, by a short lock): old
// buckets unlinked and backstop expiries (dispatch-claims.ts, UPKEEP), the single-dispatch queue
// flagged while it holds jobs, and which claim format the connected workers need. This release
// keeps the marks in hashes per time bucket; the release before kept a key per dispatch and
// does not read the buckets. While a worker of that release consumes a bot's batches (a rolling
// upgrade, a rollback), this one writes and reads the per-key marks too, until a window (plus
// the interval and the old worker's shutdown grace) after the last such worker was seen, since
// its marks live that long. What tells the releases apart is BullMQ's client name: this
// release's batch consumers are named workers (CLAIMS_WORKER_NAME); the earlier release's are
// unnamed, so their blocking connection is named `<prefix>:<base64 of the queue>` exactly.
// Looked at once before consuming and then every `everyMs`. A Redis that refuses CLIENT LIST
// (an ACL, a renamed command) can hide old workers, so there the per-key marks stay kept; any
// other error (a timeout, a failover) leaves the format as it is until the next look.
import type { Logger } from 'pino';
import type { RedisClient } from '../../configuration/redis-connection.js';
import { anyClientNamed, clientLists, isRefusal } from '../../queues/connected-consumers.js';
import { BATCH_CONSUMERS, consumerClientName, QUEUES } from '../../queues/queue-names.js';
import { PeriodicCheck } from '../../timing/periodic-check.js';
import type { DispatchClaims } from './dispatch-claims.js';

/** The BullMQ worker name of this release's consumers of the events queues. */
export const CLAIMS_WORKER_NAME = BATCH_CONSUMERS.name;

/** The client name of an earlier release's (unnamed) consumer of the batches under `prefix`. */
export const oldWorkerClientName = (prefix: string) => consumerClientName(prefix, QUEUES.events);

export interface PerKeyMarksWatchOptions {
  redis: RedisClient;
  /** The bot's queue prefix: where the look's lock lives, and the single-dispatch queue. */
  botPrefix: string;
  /**
   * The claims' prefixes to keep and to look for consumers of: the bot's and every partition's up
   * to the high-water mark (a lowered count's old consumers included).
   */
  prefixes: () => Promise<readonly string[]>;
  /** The claims under a prefix. */
  claims: (prefix: string) => DispatchClaims;
  /** The bot's single-dispatch job prefix when this process consumes that queue. */
  singleJobPrefix?: string;
  windowSeconds: number;
  everyMs: number;
  /** How long an old worker may still finish batches after its consumer disconnected. */
  shutdownTimeoutMs: number;
  log: Logger;
}

export class PerKeyMarksWatch {
  private readonly checks: PeriodicCheck;
  private refusedLogged = false;
  private seen?: boolean;

  constructor(private readonly o: PerKeyMarksWatchOptions) {
    this.checks = new PeriodicCheck(
      () =>
        this.check().catch((err: unknown) =>
          o.log.warn(
            { err: (err as Error).message },
            'claims upkeep failed (the claim format stays as it is); trying again next interval',
          ),
        ),
      o.everyMs,
    );
  }

  /**
   * How long the per-key flag lives after a sighting: a window (their marks' life) plus the
   * longest gap between two looks (two intervals: the lock's and a tick's) plus the old worker's
   * shutdown grace (BullMQ drops its blocking connection before it finishes in-flight jobs).
   */
  flagSeconds(): number {
    return this.o.windowSeconds + Math.ceil((2 * this.o.everyMs + this.o.shutdownTimeoutMs) / 1000);
  }

  /**
   * Looks now unless another worker of the bot did within the interval, then reads the flags the
   * claims follow; resolves once the per-key marks are kept if they must be. Awaited before consuming: a failure
   * then stops the start (the pod restarts and looks again).
   */
  async check(): Promise<void> {
    const { redis, botPrefix, everyMs } = this.o;
    const prefixes = await this.o.prefixes();
    const lock = `${botPrefix}:claims:look`;
    if ((await redis.set(lock, '1', 'PX', everyMs, 'NX')) === 'OK') {
      try {
        await this.look(prefixes);
      } catch (err) {
        // The next check (this worker's restart, or another's) looks again, not an interval later.
        await redis.del(lock).catch(() => undefined);
        throw err;
      }
    }
    // Every worker follows the flags the look keeps, read once per interval, not per claim.
    await Promise.all(prefixes.map((p) => this.o.claims(p).readMode()));
  }

  /** The look itself, by one worker of the bot per interval. */
  private async look(prefixes: readonly string[]): Promise<void> {
    const { everyMs, botPrefix } = this.o;
    // A backstop expiry well after the upkeeps meant to unlink the bucket first.
    const margin = 60 + Math.ceil((4 * everyMs) / 1000);
    await Promise.all(
      prefixes.map((p) =>
        this.o.claims(p).upkeep(margin, p === botPrefix ? (this.o.singleJobPrefix ?? '') : ''),
      ),
    );
    const old = await this.oldWorkersConnected(prefixes);
    if (old) await Promise.all(prefixes.map((p) => this.o.claims(p).keepPerKeyMarks(this.flagSeconds())));
  }

  private async oldWorkersConnected(prefixes: readonly string[]): Promise<boolean> {
    let old: boolean;
    try {
      old = anyClientNamed(await clientLists(this.o.redis), new Set(prefixes.map(oldWorkerClientName)));
    } catch (err) {
      if (!isRefusal(err)) throw err;
      if (!this.refusedLogged)
        this.o.log.warn(
          { err: (err as Error).message },
          'CLIENT LIST is refused: workers of the release with per-key claims cannot be seen, so ' +
            'claims keep those marks too (more Redis commands per batch than either release alone); ' +
            "allow client|list to the bot's Redis user to end it",
        );
      this.refusedLogged = true;
      return true;
    }
    if (old !== this.seen)
      this.o.log.info(
        { oldWorkers: old },
        old
          ? 'workers of the release with per-key claims are connected: writing and reading those marks too'
          : 'no worker of the release with per-key claims connected; their marks are kept until the flag expires',
      );
    this.seen = old;
    return old;
  }

  start(): void {
    this.checks.start();
  }

  async stop(timeoutMs: number): Promise<void> {
    await this.checks.stop(timeoutMs);
  }
}
