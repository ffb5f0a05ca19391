// A keyed work queue in the manner of client-go's: a key is processed by at most one worker at
// a time; adding a key that is being processed runs it once more afterwards; failures are
// retried with per-key exponential backoff; requeues after a delay keep only the earliest.
//
// Two lanes, as controller-runtime's priority queue: keys added because something changed (a
// watch event: an edit) go ahead of keys whose timer fired (periodic refreshes, backoff
// retries, resyncs), so an edit does not wait behind a thousand bots' refreshes. Timer keys
// are not starved: after `maxEventsAhead` event keys in a row, one timer key goes next.

export interface ReconcileResult {
  /** Reconcile this key again after this long (level-triggered refresh). */
  requeueAfterMs?: number;
}

/** Why a key is queued: a watch event (an edit) or a timer (refresh, retry, resync). */
export type Priority = 'event' | 'timer';

export interface WorkQueueOptions {
  concurrency: number;
  /** Event keys taken in a row while timer keys wait, before one timer key goes (default 8). */
  maxEventsAhead?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onResult?: (key: string, outcome: 'success' | 'error', durationMs: number, error?: unknown) => void;
  /** A key's reconcile starts after it waited this long in the queue (since added or due). */
  onStart?: (key: string, waitedMs: number) => void;
}

export class WorkQueue {
  private readonly lanes: Record<Priority, string[]> = { event: [], timer: [] };
  /** Queued keys, with when each was queued and its lane. */
  private readonly queued = new Map<string, { since: number; priority: Priority }>();
  private eventsInARow = 0;
  private readonly processing = new Set<string>();
  /** Keys added while processing, run once more afterwards at the highest priority asked. */
  private readonly dirty = new Map<string, Priority>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private running = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly handler: (key: string) => Promise<ReconcileResult | void>,
    private readonly options: WorkQueueOptions,
  ) {}

  start(): void {
    this.running = true;
    this.pump();
  }

  /** Stops taking work and waits for in-flight reconciles to finish. */
  async stop(): Promise<void> {
    this.running = false;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    if (this.processing.size > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  depth(): number {
    return this.queued.size;
  }

  add(key: string, priority: Priority = 'event'): void {
    if (this.processing.has(key)) {
      if (priority === 'event' || !this.dirty.has(key)) this.dirty.set(key, priority);
      return;
    }
    const queued = this.queued.get(key);
    if (queued && (queued.priority === 'event' || priority === 'timer')) return;
    // A timer key an event promotes moves to the event lane (and keeps when it was queued).
    if (queued) this.lanes.timer.splice(this.lanes.timer.indexOf(key), 1);
    this.queued.set(key, { since: queued?.since ?? performance.now(), priority });
    this.lanes[priority].push(key);
    this.pump();
  }

  addAfter(key: string, delayMs: number): void {
    if (delayMs <= 0) return this.add(key, 'timer');
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key, 'timer');
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Retry after a failure: base * 2^failures, capped. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.options.maxDelayMs ?? 300_000, (this.options.baseDelayMs ?? 200) * 2 ** n);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  private pump(): void {
    while (this.running && this.processing.size < this.options.concurrency) {
      const key = this.next();
      if (key === undefined) return;
      this.options.onStart?.(key, performance.now() - this.queued.get(key)!.since);
      this.queued.delete(key);
      this.processing.add(key);
      void this.process(key);
    }
  }

  /** The next key to run: event keys first, but a timer key after maxEventsAhead of them. */
  private next(): string | undefined {
    const timerTurn = this.eventsInARow >= (this.options.maxEventsAhead ?? 8);
    for (const lane of timerTurn ? (['timer', 'event'] as const) : (['event', 'timer'] as const)) {
      const key = this.lanes[lane].shift();
      if (key === undefined) continue;
      this.eventsInARow = lane === 'event' ? this.eventsInARow + 1 : 0;
      return key;
    }
    return undefined;
  }

  private async process(key: string): Promise<void> {
    const started = performance.now();
    try {
      const result = await this.handler(key);
      this.forget(key);
      this.options.onResult?.(key, 'success', performance.now() - started);
      if (this.running && result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      this.options.onResult?.(key, 'error', performance.now() - started, err);
      if (this.running) this.addRateLimited(key);
    } finally {
      this.processing.delete(key);
      const again = this.dirty.get(key);
      this.dirty.delete(key);
      if (again && this.running) this.add(key, again);
      if (this.processing.size === 0) for (const resolve of this.idle.splice(0)) resolve();
      this.pump();
    }
  }
}
