// The pure part of consuming a job of forwarded events: what it carries (a batch, or one
// dispatch as gateways before batching queued it), and, once the keys are claimed, what runs and
// in which order. Dispatches of one guild run one after another in the order the gateway
// received them (a shard delivers a guild's events in order, and a batch is one cluster
// process's, in arrival order); different guilds run side by side.
import {
  BATCH_BODY_TTL_SECONDS,
  orderKey,
  type BatchedDispatch,
  type DispatchJob,
} from '../../queues/queue-names.js';
import type { ClaimState } from './dispatch-claims.js';

/** A BullMQ job as far as this module reads it. */
export interface EventJob {
  id?: string | undefined;
  data: unknown;
}

/** The key of the body that holds the job's dispatches, when they are not in its data. */
export function bodyKeyOf(job: EventJob): string | undefined {
  const body = (job.data as { body?: unknown } | undefined)?.body;
  return typeof body === 'string' ? body : undefined;
}

/**
 * The dispatches a job of the events queues carries, in order: inline, or in its batch body
 * (`body`: what GET of `bodyKeyOf(job)` answered).
 */
export function dispatchesOf(job: EventJob, body?: string | null): BatchedDispatch[] {
  const bodyKey = bodyKeyOf(job);
  const data = (bodyKey === undefined ? job.data : { dispatches: parseBody(job, bodyKey, body) }) as {
    dispatches?: unknown;
    t?: unknown;
  };
  if (Array.isArray(data?.dispatches)) {
    // A malformed entry would claim `dispatch:undefined` for every batch: refused by name.
    data.dispatches.forEach((d: unknown, i) => {
      const { key, t } = (d ?? {}) as { key?: unknown; t?: unknown };
      if (typeof key !== 'string' || key === '' || typeof t !== 'string')
        throw new Error(`job ${job.id ?? '?'}: dispatches[${i}] has no string "key" and "t"`);
    });
    return data.dispatches as BatchedDispatch[];
  }
  // One dispatch, from a gateway of a release before batching: its job id is its key.
  if (typeof data?.t === 'string' && job.id) return [{ ...(data as DispatchJob), key: job.id }];
  throw new Error(`job ${job.id ?? '?'} carries neither a batch of dispatches nor a dispatch`);
}

/**
 * The dispatches of a job of the events queues, its batch body read from `redis` if it has one.
 * A body that is gone may have been taken inline by another attempt of the job, one whose lock
 * had lapsed, failing what was left (worker-runtime.ts): then the job as stored now
 * (`storedJob`, e.g. BullMQ's `Job.fromId`) has them.
 */
export async function loadDispatches(
  redis: { get(key: string): Promise<string | null> },
  job: EventJob,
  storedJob?: () => Promise<EventJob | undefined>,
): Promise<BatchedDispatch[]> {
  const bodyKey = bodyKeyOf(job);
  if (bodyKey === undefined) return dispatchesOf(job);
  const body = await redis.get(bodyKey);
  if (body === null && storedJob) {
    const stored = await storedJob();
    if (stored !== undefined && bodyKeyOf(stored) === undefined) return dispatchesOf(stored);
  }
  return dispatchesOf(job, body);
}

function parseBody(job: EventJob, bodyKey: string, body: string | null | undefined): unknown {
  if (body === null || body === undefined)
    throw new Error(
      `job ${job.id ?? '?'}: its batch body ${bodyKey} is gone (a body is kept ${BATCH_BODY_TTL_SECONDS / 86_400} days after its enqueue)`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(body) as unknown;
  } catch (err) {
    throw new Error(
      `job ${job.id ?? '?'}: its batch body ${bodyKey} is not JSON: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (!Array.isArray(parsed) || parsed.length === 0)
    throw new Error(`job ${job.id ?? '?'}: its batch body ${bodyKey} is not a list of dispatches`);
  return parsed;
}

export interface BatchPlan {
  /** What this job runs: per order key, in batch order. */
  groups: BatchedDispatch[][];
  /** Processed already, held by another job, or a second copy within this batch. */
  skipped: BatchedDispatch[];
}

/** Splits a claimed batch (`states[i]` is dispatch i's claim) into what runs and what is skipped. */
export function planBatch(dispatches: readonly BatchedDispatch[], states: readonly ClaimState[]): BatchPlan {
  if (states.length !== dispatches.length)
    throw new Error(`${states.length} claim states for ${dispatches.length} dispatches`);
  const groups = new Map<string, BatchedDispatch[]>();
  const skipped: BatchedDispatch[] = [];
  const seen = new Set<string>();
  dispatches.forEach((d, i) => {
    // A key twice in one batch (a replay that reached the buffer before its original was sent)
    // was claimed by this job for both copies: only the first runs.
    if (states[i] !== 'claimed' || seen.has(d.key)) {
      skipped.push(d);
      return;
    }
    seen.add(d.key);
    const key = orderKey(d);
    const group = groups.get(key);
    if (group) group.push(d);
    else groups.set(key, [d]);
  });
  return { groups: [...groups.values()], skipped };
}

/** What became of a batch's dispatches that this job ran. */
export interface BatchOutcome {
  done: BatchedDispatch[];
  failed: { dispatch: BatchedDispatch; error: unknown }[];
  /** Behind a failed dispatch of their guild: not run, so they run after it, on the retry. */
  held: BatchedDispatch[];
}

/** The error a batch fails with: a single failure's own, else one naming how many and the first. */
export function batchError(outcome: BatchOutcome): Error | undefined {
  const [first] = outcome.failed;
  if (!first) return undefined;
  const cause = first.error instanceof Error ? first.error : new Error(String(first.error));
  if (outcome.failed.length === 1 && outcome.held.length === 0) return cause;
  return new Error(
    `${outcome.failed.length} dispatch(es) failed (${outcome.held.length} more held behind them); first: ${first.dispatch.t} ${first.dispatch.key}: ${cause.message}`,
  );
}

/** How many handlers a batch can keep busy at once: its guilds (and channels) side by side. */
export function batchParallelism(dispatches: readonly Pick<DispatchJob, 't' | 'd'>[]): number {
  return new Set(dispatches.map(orderKey)).size;
}

/**
 * How many batch jobs a worker holds at once: about as many as fill its handler slots. A batch
 * taken is no longer in the wait list the autoscaler counts, so a worker holding `slots` batches
 * of 100 would hide 100 times its capacity from it. What fills the slots is a batch's
 * parallelism (its guilds run side by side, one guild's dispatches one after another), not its
 * size: a batch of 100 dispatches of 2 busy guilds keeps 2 slots busy. Follows the mean
 * parallelism of recent batches.
 */
export class BatchIntake {
  private meanParallelism = 1;

  constructor(private readonly slots: number) {}

  /** Records a batch's parallelism (batchParallelism); returns the batches to hold from now on. */
  observe(parallelism: number): number {
    this.meanParallelism += 0.2 * (Math.max(1, parallelism) - this.meanParallelism);
    return this.jobs();
  }

  jobs(): number {
    // Rounded, not ceiled: a mean that only approaches 2 must not make 10 slots hold 6 batches.
    return Math.max(1, Math.min(this.slots, Math.round(this.slots / this.meanParallelism)));
  }
}
