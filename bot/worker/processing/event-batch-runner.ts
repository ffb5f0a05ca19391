// Runs one job of forwarded events: claims its dispatches' keys (one round trip), runs the
// claimed ones (a guild's in order, guilds side by side, at most `slots` handlers at once in the
// process), marks each done as it finishes (one write in flight, those finishing meanwhile joined), then gives up
// what failed or was held behind a failure. A failure fails the job; what is left to run becomes
// the job's data, so BullMQ's retry (or a manual one) runs only that.
import type { BatchedDispatch } from '../../queues/queue-names.js';
import { countByType } from '../../queues/count-by-type.js';
import type { WorkerServices } from '../handlers/bot-module.js';
import type { HandlerRegistry } from '../handlers/handler-registry.js';
import type { WorkerMetrics } from '../metrics.js';
import { within } from '../../timing/within.js';
import type { ClaimOwner, Claims } from './dispatch-claims.js';
import { batchError, planBatch, type BatchOutcome } from './event-batch.js';

/** A bound on handlers running at once, shared by every batch of the process. */
export class Slots {
  private waiting: (() => void)[] = [];

  constructor(private free: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    }
  }
}

export interface EventBatchRunnerOptions {
  claims: Claims;
  registry: HandlerRegistry;
  services: WorkerServices;
  metrics: WorkerMetrics;
  slots: Slots;
  /** A handler still running after this long fails its dispatch (the batch is retried). */
  handlerTimeoutMs: number;
}

/** One attempt at a job of events. */
export interface BatchAttempt {
  owner: ClaimOwner;
  /** No retry follows a failure: run what is held behind a failed dispatch anyway. */
  lastAttempt: boolean;
}

/** A batch with failed dispatches: `remaining` (batch order) is what its retry has left to run. */
export class BatchFailure extends Error {
  constructor(
    message: string,
    readonly remaining: BatchedDispatch[],
  ) {
    super(message);
  }
}

/**
 * The done marks of one attempt, written as its dispatches finish (a crash re-runs only what was
 * in flight, at most a round trip's worth more), one write in flight at a time: marks that finish
 * while one is in flight join the next. So a batch costs as many writes as round trips its
 * handlers span, not one per dispatch.
 */
class DoneMarks {
  private pending: string[] = [];
  private inFlight?: Promise<void>;
  private failure?: unknown;

  constructor(
    private readonly claims: Claims,
    private readonly owner: ClaimOwner,
  ) {}

  add(key: string): void {
    this.pending.push(key);
    // After the tick, so the marks of dispatches finishing together share the write.
    this.inFlight ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain());
  }

  /** Waits for every mark; throws the first failed write's error. */
  async written(): Promise<void> {
    await this.inFlight;
    if (this.failure !== undefined)
      throw this.failure instanceof Error ? this.failure : new Error(String(this.failure));
  }

  /** Writes what is pending, then what finished meanwhile, until nothing is; never rejects. */
  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const keys = this.pending;
      this.pending = [];
      try {
        await this.claims.finish(this.owner, keys, []);
      } catch (err) {
        this.failure ??= err;
      }
    }
    this.inFlight = undefined;
  }
}

export class EventBatchRunner {
  constructor(private readonly o: EventBatchRunnerOptions) {}

  /** The key prefix of the claims (the bot's queue prefix). */
  get claimsPrefix(): string {
    return this.o.claims.prefix;
  }

  /** Runs `dispatches` as `attempt`; throws a BatchFailure when any failed (after recording the rest). */
  async run(attempt: BatchAttempt, dispatches: readonly BatchedDispatch[]): Promise<void> {
    const { claims, metrics } = this.o;
    const { owner } = attempt;
    const states = await claims.claim(
      owner,
      dispatches.map((d) => d.key),
    );
    const plan = planBatch(dispatches, states);
    const outcome: BatchOutcome = { done: [], failed: [], held: [] };
    const marks = new DoneMarks(claims, owner);
    await Promise.all(plan.groups.map((group) => this.runGroup(group, outcome, marks, attempt.lastAttempt)));
    const unsettled = [...outcome.failed.map((f) => f.dispatch), ...outcome.held];
    await Promise.all([
      marks.written(),
      claims.finish(
        owner,
        [],
        unsettled.map((d) => d.key),
      ),
    ]);
    const counts = {
      skipped: plan.skipped,
      completed: outcome.done,
      failed: outcome.failed.map((f) => f.dispatch),
      held: outcome.held,
    };
    for (const [result, list] of Object.entries(counts))
      for (const [type, n] of countByType(list)) metrics.dispatches.inc({ type, outcome: result }, n);
    const error = batchError(outcome);
    if (error) {
      const left = new Set(unsettled);
      throw new BatchFailure(
        error.message,
        dispatches.filter((d) => left.has(d)),
      );
    }
  }

  /**
   * One guild's dispatches in order; after a failure the rest wait for the retry, unless none
   * follows (they would be lost behind a dispatch that never succeeds).
   */
  private async runGroup(
    group: BatchedDispatch[],
    outcome: BatchOutcome,
    marks: DoneMarks,
    lastAttempt: boolean,
  ): Promise<void> {
    for (const [i, d] of group.entries()) {
      try {
        await this.o.slots.run(() => this.handle(d));
        outcome.done.push(d);
        marks.add(d.key);
      } catch (error) {
        outcome.failed.push({ dispatch: d, error });
        if (lastAttempt) continue;
        outcome.held.push(...group.slice(i + 1));
        return;
      }
    }
  }

  private async handle(d: BatchedDispatch): Promise<void> {
    const event = { type: d.t, payload: d.d, shardId: d.shardId, receivedAt: d.receivedAt };
    const ms = this.o.handlerTimeoutMs;
    const handlers = (async () => {
      for (const h of this.o.registry.eventHandlers(d.t)) await h.handle(event, this.o.services);
    })();
    await within(handlers, ms, () => {
      // It may still finish; the retry runs it again then (at least once beats stuck forever).
      handlers.catch(() => undefined);
      throw new Error(`${d.t} ${d.key}: handlers did not finish within ${ms} ms`);
    });
  }
}
