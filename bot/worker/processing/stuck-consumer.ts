// When a BullMQ consumer has stopped taking jobs. On a Redis Cluster whose master was killed and
// replaced by its replica, a Worker was seen to stop fetching for good: its fetch of the next job
// never settled, it logged nothing, `isRunning()` stayed true, and jobs piled up in `wait` while
// the other consumers of the same process went on (docs/install.md; BullMQ issue #4138, open).
// Nothing inside the Worker notices, so the runtime watches it from outside (worker-runtime.ts)
// and replaces it. This is the pure decision; the runtime reads the counts and acts.
// It assumes no queue-level rate limit or global concurrency (the project sets none): with one, a
// healthy consumer with room would leave jobs waiting and be taken for stuck.

/** What the runtime knows of one consumer. */
export interface ConsumerActivity {
  /** Jobs its processor is running now. */
  readonly inFlight: number;
  readonly concurrency: number;
  /** When it last started a job, or was created. */
  readonly lastStartedAt: number;
}

/**
 * How long jobs may wait while a consumer with room starts none. A healthy one takes a waiting
 * job at once, or after its blocking read times out (BullMQ's drainDelay, 5 s) if it missed the
 * wake-up; far above both, so a loaded machine's slow event loop is not taken for a stuck fetch.
 */
export const STUCK_AFTER_MS = 30_000;

/** How often the runtime looks: one count of each queue's waiting jobs per look. */
export const WATCH_EVERY_MS = 5_000;

/**
 * Whether counting the queue can tell anything: not when the consumer is full (it cannot take
 * more) or started a job within the last look's interval (it is taking jobs). Saves Redis a count
 * on a busy worker; a stuck consumer is seen at most one look later.
 */
export function worthCounting(
  activity: ConsumerActivity,
  now: number,
  watchEveryMs = WATCH_EVERY_MS,
): boolean {
  return activity.inFlight < activity.concurrency && now - activity.lastStartedAt >= watchEveryMs;
}

/**
 * Since when the consumer has had room and jobs waiting and started none (given when the previous
 * look said so), or undefined when it has no room or nothing waits. The time moves on with each
 * job it starts, so only a consumer that takes nothing keeps an old time.
 */
export function idleWithWorkSince(
  previous: number | undefined,
  activity: ConsumerActivity,
  waiting: number,
  now: number,
): number | undefined {
  if (waiting <= 0 || activity.inFlight >= activity.concurrency) return undefined;
  return Math.max(previous ?? now, activity.lastStartedAt);
}

/** A consumer idle with work since `since` is stuck once that has lasted `STUCK_AFTER_MS`. */
export function isStuck(since: number | undefined, now: number, stuckAfterMs = STUCK_AFTER_MS): boolean {
  return since !== undefined && now - since >= stuckAfterMs;
}
