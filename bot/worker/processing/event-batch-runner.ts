// Runs one job of forwarded events: claims its dispatches' keys (one round trip), runs the
// claimed ones (a guild's in order, guilds side by side, at most `slots` handlers at once in the
// process), then marks what ran done and gives up what failed or was held behind a failure (one
// round trip). A failure fails the job, and BullMQ's retry of it runs only what is not done.
import type { BatchedDispatch } from '../../queues/queue-names.js';
import { countByType } from '../../queues/count-by-type.js';
import type { WorkerServices } from '../handlers/bot-module.js';
import type { HandlerRegistry } from '../handlers/handler-registry.js';
import type { WorkerMetrics } from '../metrics.js';
import type { DispatchClaims } from './dispatch-claims.js';
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
  claims: DispatchClaims;
  registry: HandlerRegistry;
  services: WorkerServices;
  metrics: WorkerMetrics;
  slots: Slots;
}

export class EventBatchRunner {
  constructor(private readonly o: EventBatchRunnerOptions) {}

  /** Runs `dispatches` for the job `owner`; throws when any failed (after recording the rest). */
  async run(owner: string, dispatches: readonly BatchedDispatch[]): Promise<void> {
    const { claims, metrics } = this.o;
    const states = await claims.claim(
      owner,
      dispatches.map((d) => d.key),
    );
    const plan = planBatch(dispatches, states);
    const outcome: BatchOutcome = { done: [], failed: [], held: [] };
    await Promise.all(plan.groups.map((group) => this.runGroup(group, outcome)));
    await claims.finish(
      owner,
      outcome.done.map((d) => d.key),
      [...outcome.failed.map((f) => f.dispatch), ...outcome.held].map((d) => d.key),
    );
    const counts = {
      skipped: plan.skipped,
      completed: outcome.done,
      failed: outcome.failed.map((f) => f.dispatch),
    };
    for (const [result, list] of Object.entries(counts))
      for (const [type, n] of countByType(list)) metrics.dispatches.inc({ type, outcome: result }, n);
    const error = batchError(outcome);
    if (error) throw error;
  }

  /** One guild's dispatches in order; after a failure the rest wait for the retry. */
  private async runGroup(group: BatchedDispatch[], outcome: BatchOutcome): Promise<void> {
    for (const [i, d] of group.entries()) {
      try {
        await this.o.slots.run(() => this.handle(d));
        outcome.done.push(d);
      } catch (error) {
        outcome.failed.push({ dispatch: d, error });
        outcome.held.push(...group.slice(i + 1));
        return;
      }
    }
  }

  private async handle(d: BatchedDispatch): Promise<void> {
    const event = { type: d.t, payload: d.d, shardId: d.shardId, receivedAt: d.receivedAt };
    for (const h of this.o.registry.eventHandlers(d.t)) await h.handle(event, this.o.services);
  }
}
