// Informers (list + watch + cache) that survive everything a long-running operator meets: a
// watch that ends (the server's timeout) is started again from the last resourceVersion; 410
// Gone (that version is compacted away, in the stream or as the answer to the watch) relists,
// and so do a few watches failing in a row; a failed list or watch (a dropped connection, an
// apiserver restart) retries with backoff instead of going quiet. An optional transform shapes
// each object before it is cached (cache-transforms.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../../bot/observability/logger.js';
import { ApiError, type KubeClient } from '../kube/api-client.js';
import type { WatchEvent } from '../kube/watch-lines.js';
import { ObjectCache, type CacheIndexes } from './object-cache.js';

export type ChangeHandler<T> = (kind: 'add' | 'update' | 'delete', obj: T) => void;

export interface InformerOptions<T> {
  labelSelector?: string;
  /** Called before each list (the operator counts requests). */
  onList?: () => void;
  transform?: (obj: T) => T;
  /**
   * List and watch objects as metadata only (PartialObjectMetadata): for Secrets, whose values
   * the informer would only drop, so they never cross the wire or sit in a buffered list.
   */
  metadataOnly?: boolean;
  /** The lookups besides namespace/name the cache indexes (listOwnedBy, listNamed). */
  indexes?: CacheIndexes;
}

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;
/** Watches failing in a row after which the informer lists again, as client-go's reflector does after one. */
const RELIST_AFTER_FAILED_WATCHES = 3;

export class ResilientInformer<T extends KubernetesObject> {
  private readonly cache: ObjectCache<T>;
  private resourceVersion = '';
  private stopped = true;
  private restartDelayMs = FIRST_RETRY_MS;
  private failedWatches = 0;
  private restartTimer?: NodeJS.Timeout;
  private running?: AbortController;
  private markSynced!: () => void;
  /** Resolves once the first list has succeeded: the cache is filled. */
  readonly synced = new Promise<void>((resolve) => (this.markSynced = resolve));

  constructor(
    private readonly client: KubeClient,
    readonly path: string,
    private readonly onChange: ChangeHandler<T>,
    private readonly log: Logger,
    private readonly options: InformerOptions<T> = {},
  ) {
    this.cache = new ObjectCache<T>(options.indexes);
  }

  /** Starts listing and watching; resolves when the cache is synced (retrying failed lists). */
  start(): Promise<void> {
    if (this.stopped) {
      this.stopped = false;
      void this.run();
    }
    return this.synced;
  }

  /** Lists when it has no resourceVersion to watch from, then watches until stopped or failed. */
  private async run(): Promise<void> {
    const running = new AbortController();
    this.running = running;
    try {
      while (!running.signal.aborted) {
        if (!this.resourceVersion) await this.relist(running.signal);
        if (running.signal.aborted) return;
        const heard = await this.watchOnce(running.signal);
        // A watch the server ends at once, again and again, must not become a busy loop.
        if (!heard) await sleep(this.nextDelay(), undefined, { signal: running.signal });
      }
    } catch (err) {
      if (!running.signal.aborted) this.scheduleRestart(err);
    }
  }

  /** One watch from the current resourceVersion; whether it brought any event. */
  private async watchOnce(stop: AbortSignal): Promise<boolean> {
    const gone = new AbortController();
    let heard = false;
    const { labelSelector, metadataOnly } = this.options;
    try {
      await this.client.watch<T>(
        this.path,
        { resourceVersion: this.resourceVersion, labelSelector, metadataOnly },
        (event) => {
          heard = true;
          if (this.handle(event) === 'gone') gone.abort();
        },
        AbortSignal.any([stop, gone.signal]),
      );
    } catch (err) {
      // 410 Gone as the answer to the watch: the version we watch from is compacted away.
      const expired = err instanceof ApiError && err.code === 410;
      this.failedWatches += 1;
      if (expired || this.failedWatches >= RELIST_AFTER_FAILED_WATCHES) this.resourceVersion = '';
      if (expired) return heard;
      throw err;
    }
    this.failedWatches = 0;
    return heard;
  }

  private async relist(signal: AbortSignal): Promise<void> {
    this.options.onList?.();
    const { labelSelector, metadataOnly, transform } = this.options;
    // Transformed page by page: a relist with thousands of objects never holds them all whole.
    const { items, metadata } = await this.client.list<T>(this.path, {
      labelSelector,
      metadataOnly,
      signal,
      transform,
    });
    this.failedWatches = 0;
    // A handler that throws puts the cache back as it was: the next list hands every change over again.
    const before = this.cache.list();
    try {
      for (const [kind, obj] of this.cache.replace(items)) this.onChange(kind, obj);
    } catch (err) {
      this.cache.replace(before);
      throw err;
    }
    this.resourceVersion = metadata?.resourceVersion ?? '';
    this.markSynced();
  }

  private handle(event: WatchEvent<T>): 'gone' | undefined {
    if (event.type === 'ERROR') {
      const status = event.object as { code?: number; message?: string };
      // 410 Gone: the version we watched from is compacted away; list again.
      if (status.code === 410) {
        this.resourceVersion = '';
        return 'gone';
      }
      throw new Error(`watch ${this.path}: ${status.message ?? 'error event'}`);
    }
    this.restartDelayMs = FIRST_RETRY_MS;
    if (event.type !== 'BOOKMARK') this.apply(event);
    // Only now: a handler that threw leaves the version where it was, so the informer, started
    // again, watches from before this event and hands it over once more.
    this.resourceVersion = event.object.metadata?.resourceVersion ?? this.resourceVersion;
    return undefined;
  }

  /** An event into the cache and to the handler; a handler that throws leaves the cache as it was. */
  private apply(event: WatchEvent<T>): void {
    const obj = this.options.transform ? this.options.transform(event.object) : event.object;
    const before = this.cache.get(obj.metadata?.name ?? '', obj.metadata?.namespace);
    const change = event.type === 'DELETED' ? this.cache.remove(obj) : this.cache.put(obj);
    if (!change) return;
    try {
      this.onChange(change, obj);
    } catch (err) {
      if (before) this.cache.put(before);
      else this.cache.remove(obj);
      throw err;
    }
  }

  private nextDelay(): number {
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(MAX_RETRY_MS, this.restartDelayMs * 2);
    return delay;
  }

  private scheduleRestart(err: unknown): void {
    if (this.stopped || this.restartTimer) return;
    const delay = this.nextDelay();
    this.log.warn(
      { path: this.path, err: (err as Error)?.message ?? String(err), retryInMs: delay },
      'watch failed; restarting informer',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) void this.run();
    }, delay);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.cache.list(namespace);
  }

  /** The cached objects whose controller has this UID. */
  listOwnedBy(ownerUid: string): readonly T[] {
    return this.cache.listOwnedBy(ownerUid);
  }

  /** The cached objects of this name, in every namespace. */
  listNamed(name: string): readonly T[] {
    return this.cache.listNamed(name);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.running?.abort();
  }
}
