// What the forwarder writes for one batch of buffered dispatches: pure, so it is tested without
// Redis. Events become ONE job carrying them all, in the order received: BullMQ's cost is per job
// (a Lua script, a hash, list and event-stream entries), so a job per dispatch cost 16–18 µs of
// Redis CPU each (docs/benchmarks.md). Such a job has no id of its own to de-duplicate by; each
// dispatch carries its key and the worker claims the keys (bot/worker/processing/dispatch-claims.ts).
// Interactions stay one job each, keyed by the dispatch: few, latency-bound, answered once, and
// BullMQ's job id de-duplicates them as before.
import type { JobsOptions } from 'bullmq';
import {
  BATCH_JOB_NAME,
  DEDUP_WINDOW_SECONDS,
  KEEP_FAILED_SECONDS,
  RETRY_POLICY,
  type BatchedDispatch,
  type DispatchBatchJob,
  type DispatchBatchRef,
  type DispatchJob,
} from '../../queues/queue-names.js';

/** A dispatch waiting in the forwarder's buffer. */
export interface Pending {
  queue: 'interactions' | 'events';
  dispatch: BatchedDispatch;
  /**
   * Set once its part of a batch is in the queue: a batch whose interactions or events failed
   * is retried with only the part not yet written (no second copy of the other).
   */
  written?: boolean;
}

export interface BulkJob {
  name: string;
  data: DispatchJob | DispatchBatchJob | DispatchBatchRef;
  opts: JobsOptions;
}

/** Failed jobs stay a week for inspection (BullMQ's failed set). */
const KEEP_FAILED = { age: KEEP_FAILED_SECONDS };

/**
 * The jobs to add for `batch`, per queue; a queue with nothing to add is absent. Interactions
 * are kept `dedupWindowSeconds`, the window the workers' claims of event keys live too
 * (DEDUP_WINDOW_SECONDS, one constant for both).
 */
export function bulkJobs(
  batch: readonly Pending[],
  dedupWindowSeconds = DEDUP_WINDOW_SECONDS,
): { interactions?: BulkJob[]; events?: BulkJob[] } {
  const interactions: BulkJob[] = [];
  const events: BatchedDispatch[] = [];
  for (const p of batch) {
    if (p.queue === 'events') {
      events.push(p.dispatch);
      continue;
    }
    const { key, ...data } = p.dispatch;
    interactions.push({
      name: data.t,
      data,
      // Completed interaction jobs are kept for the window: their ids are what de-duplicates them.
      opts: {
        jobId: key,
        removeOnComplete: { age: dedupWindowSeconds },
        removeOnFail: KEEP_FAILED,
        ...RETRY_POLICY.interactions,
      },
    });
  }
  return {
    ...(interactions.length > 0 ? { interactions } : {}),
    ...(events.length > 0
      ? {
          events: [
            {
              name: BATCH_JOB_NAME,
              data: { dispatches: events },
              // Done keys live in Redis (the claims), so a completed batch is of no further use.
              opts: { removeOnComplete: true, removeOnFail: KEEP_FAILED, ...RETRY_POLICY.events },
            },
          ],
        }
      : {}),
  };
}

/**
 * A batch job (`bulkJobs`' events) as a body at `bodyKey` and a job that refers to it: the body
 * is written with a plain SET, outside BullMQ's scripts (queue-names.ts, DispatchBatchRef).
 */
export function withBody(job: BulkJob, bodyKey: string): { job: BulkJob; body: string } {
  const { dispatches } = job.data as DispatchBatchJob;
  if (!Array.isArray(dispatches) || dispatches.length === 0)
    throw new Error('withBody: not a batch job of dispatches');
  const data: DispatchBatchRef = {
    body: bodyKey,
    size: dispatches.length,
    receivedAt: dispatches[0]!.receivedAt,
  };
  return { job: { ...job, data }, body: JSON.stringify(dispatches) };
}
