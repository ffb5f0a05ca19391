// The claims' upkeep, once per interval for a bot (one worker looks, by a short lock): old
// buckets unlinked and backstop expiries (dispatch-claims.ts, UPKEEP), the single-dispatch queue
// flagged while it holds jobs, and what the consumers of earlier releases connected need. What
// tells the releases apart is BullMQ's client name (queue-names.ts, BATCH_CONSUMERS): this
// release's batch consumers are named `batch-bodies`, the release before's `bucketed-claims`, and
// the ones before it are unnamed, so their blocking connection is named `<prefix>:<base64 of the
// queue>` exactly. From one `CLIENT LIST`:
// - an unnamed consumer keeps a key per dispatch and does not read the buckets: while one is
//   connected this release writes and reads the per-key marks too, until a window (plus the
//   interval and the old worker's shutdown grace) after the last was seen, since its marks live
//   that long;
// - an unnamed or `bucketed-claims` consumer reads only inline batches: the flag that lets the
//   gateways write batch bodies (queue-names.ts, batchBodiesFlagKey) is set only while none is
//   connected, for a few intervals, and deleted as soon as one is seen.
// Looked at once before consuming and then every `everyMs`. A Redis that refuses CLIENT LIST
// (an ACL, a renamed command) can hide old workers, so there the per-key marks stay kept and
// batches inline; any other error (a timeout, a failover) leaves the per-key marks as they are
// and deletes the bodies flag (inline until a look succeeds).
import type { Logger } from 'pino';
import type { RedisClient } from '../../configuration/redis-connection.js';
import { anyClientNamed, clientLists, isRefusal } from '../../queues/connected-consumers.js';
import { BATCH_CONSUMERS, batchBodiesFlagKey, consumerClientName, QUEUES } from '../../queues/queue-names.js';
import { PeriodicCheck } from '../../timing/periodic-check.js';
import type { DispatchClaims } from './dispatch-claims.js';

/** The BullMQ worker name of this release's consumers of the events queues. */
export const CLAIMS_WORKER_NAME = BATCH_CONSUMERS.name;

/** The client name of an earlier release's (unnamed) consumer of the batches under `prefix`. */
export const oldWorkerClientName = (prefix: string) => consumerClientName(prefix, QUEUES.events);

/** The client names of consumers that read only inline batches, under the partitions' prefixes. */
export function inlineOnlyConsumerNames(prefixes: readonly string[]): Set<string> {
  return new Set(
    prefixes.flatMap((p) => [
      oldWorkerClientName(p),
      ...BATCH_CONSUMERS.inlineOnly.map((name) => consumerClientName(p, QUEUES.events, name)),
    ]),
  );
}

/** What a look at the connected consumers found (a refusal of the look counts as both). */
interface OlderConsumers {
  /** A consumer that keeps a key per dispatch. */
  perKey: boolean;
  /** A consumer that reads only inline batches. */
  inlineOnly: boolean;
}

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
  private bodies?: boolean;

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
   * How long the bodies flag lives after a look found no consumer that needs inline batches:
   * past the longest gap between two looks (two intervals) and one more, so a look that fails
   * once does not end it, while a bot whose workers are all gone goes back to inline soon.
   */
  bodiesFlagSeconds(): number {
    return Math.ceil((3 * this.o.everyMs) / 1000);
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
        // The next check (this worker's restart, or another's) looks again, not an interval later;
        // until a look succeeds, batches are inline (the safe format).
        await redis.del(lock, batchBodiesFlagKey(botPrefix)).catch(() => undefined);
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
    const older = await this.olderConsumers(prefixes);
    // The bodies flag first: inline is the safe format, so its end must not wait on the rest.
    await this.allowBatchBodies(!older.inlineOnly);
    if (older.perKey)
      await Promise.all(prefixes.map((p) => this.o.claims(p).keepPerKeyMarks(this.flagSeconds())));
  }

  private async olderConsumers(prefixes: readonly string[]): Promise<OlderConsumers> {
    let lists: string[];
    try {
      lists = await clientLists(this.o.redis);
    } catch (err) {
      if (!isRefusal(err)) throw err;
      if (!this.refusedLogged)
        this.o.log.warn(
          { err: (err as Error).message },
          'CLIENT LIST is refused: workers of earlier releases cannot be seen, so claims keep the ' +
            'per-key marks too and gateways write batches inline (more Redis CPU per dispatch than ' +
            "either release alone); allow client|list to the bot's Redis user to end it",
        );
      this.refusedLogged = true;
      return { perKey: true, inlineOnly: true };
    }
    const perKey = anyClientNamed(lists, new Set(prefixes.map(oldWorkerClientName)));
    if (perKey !== this.seen)
      this.o.log.info(
        { oldWorkers: perKey },
        perKey
          ? 'workers of the release with per-key claims are connected: writing and reading those marks too'
          : 'no worker of the release with per-key claims connected; their marks are kept until the flag expires',
      );
    this.seen = perKey;
    return { perKey, inlineOnly: perKey || anyClientNamed(lists, inlineOnlyConsumerNames(prefixes)) };
  }

  /** Lets the gateways write batch bodies for a few intervals, or stops them at once. */
  private async allowBatchBodies(allow: boolean): Promise<void> {
    const flag = batchBodiesFlagKey(this.o.botPrefix);
    if (allow) await this.o.redis.set(flag, '1', 'EX', this.bodiesFlagSeconds());
    else await this.o.redis.del(flag);
    if (allow !== this.bodies)
      this.o.log.info(
        { batchBodies: allow },
        allow
          ? 'every consumer of the event queues reads batch bodies: gateways may write them'
          : 'a worker of an earlier release consumes the event queues: gateways write batches inline',
      );
    this.bodies = allow;
  }

  start(): void {
    this.checks.start();
  }

  async stop(timeoutMs: number): Promise<void> {
    await this.checks.stop(timeoutMs);
  }
}
