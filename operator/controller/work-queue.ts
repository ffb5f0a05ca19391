// A keyed work queue in the manner of client-go's: a key is processed by at most one worker at
// a time; adding a key that is being processed runs it once more afterwards; failures are
// retried with per-key exponential backoff; requeues after a delay keep only the earliest.

export interface ReconcileResult {
  /** Reconcile this key again after this long (level-triggered refresh). */
  requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  concurrency: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onResult?: (key: string, outcome: 'success' | 'error', durationMs: number, error?: unknown) => void;
  /** A key's reconcile starts after it waited this long in the queue (since added or due). */
  onStart?: (key: string, waitedMs: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  /** Queued keys, with when each was queued. */
  private readonly queued = new Map<string, number>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
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
    return this.queue.length;
  }

  add(key: string): void {
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.set(key, performance.now());
    this.queue.push(key);
    this.pump();
  }

  addAfter(key: string, delayMs: number): void {
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
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
    while (this.running && this.processing.size < this.options.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.options.onStart?.(key, performance.now() - this.queued.get(key)!);
      this.queued.delete(key);
      this.processing.add(key);
      void this.process(key);
    }
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
      if (this.dirty.delete(key) && this.running) this.add(key);
      if (this.processing.size === 0) for (const resolve of this.idle.splice(0)) resolve();
      this.pump();
    }
  }
}
