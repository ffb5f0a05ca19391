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
  RETRY_POLICY,
  type BatchedDispatch,
  type DispatchBatchJob,
  type DispatchJob,
} from '../../queues/queue-names.js';

/** A dispatch waiting in the forwarder's buffer. */
export interface Pending {
  queue: 'interactions' | 'events';
  dispatch: BatchedDispatch;
  /** Events: the partition whose queue takes it (eventPartitionOf); 0 for interactions. */
  partition?: number;
  /**
   * Set once its part of a batch is in the queue: a batch some of whose partitions failed is
   * retried with only the parts not yet written (no second copy of the healthy ones).
   */
  written?: boolean;
}

/** The partition whose slot `p` is written to: its event partition, 0 for an interaction. */
export const partitionOf = (p: Pending): number => (p.queue === 'events' ? (p.partition ?? 0) : 0);

/**
 * What of `batch` is still to write, split by event partition, each part in buffer order (a guild's dispatches all land in
 * one part, in order); interactions are in part 0, since they have one queue.
 */
export function byPartition(batch: readonly Pending[]): Map<number, Pending[]> {
  const parts = new Map<number, Pending[]>();
  for (const p of batch) {
    if (p.written) continue;
    const partition = partitionOf(p);
    const part = parts.get(partition);
    if (part) part.push(p);
    else parts.set(partition, [p]);
  }
  return parts;
}

export interface BulkJob {
  name: string;
  data: DispatchJob | DispatchBatchJob;
  opts: JobsOptions;
}

/** Failed jobs stay a week for inspection (BullMQ's failed set). */
const KEEP_FAILED = { age: 7 * 24 * 3600 };

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
