// Informers (list + watch + cache) that survive everything a long-running operator meets:
// 410 Gone relists (the library handles it), and on dropped connections or an apiserver
// restart the informer is started again with backoff instead of going quiet. An optional
// transform shapes each object before it is cached (cache-transforms.ts).
import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from '../../bot/observability/logger.js';

export type ChangeHandler<T> = (kind: 'add' | 'update' | 'delete', obj: T) => void;

export class ResilientInformer<T extends KubernetesObject> {
  private readonly lw: ListWatch<T>;
  private stopped = false;
  private restartDelayMs = 500;
  private restartTimer?: NodeJS.Timeout;
  private markSynced!: () => void;
  /** Resolves once the first list has succeeded: the cache is filled. */
  readonly synced = new Promise<void>((resolve) => (this.markSynced = resolve));

  constructor(
    kc: KubeConfig,
    readonly path: string,
    listFn: () => Promise<KubernetesListObject<T>>,
    onChange: ChangeHandler<T>,
    private readonly log: Logger,
    labelSelector?: string,
    private readonly onList: () => void = () => undefined,
    transform?: (obj: T) => T,
  ) {
    const list = async () => {
      this.onList();
      const result = await listFn();
      this.markSynced();
      return transform ? { ...result, items: result.items.map(transform) } : result;
    };
    this.lw = new ListWatch<T>(path, transforming(new Watch(kc), transform), list, false, labelSelector);
    this.lw.on('add', (o) => onChange('add', o));
    this.lw.on('update', (o) => onChange('update', o));
    this.lw.on('delete', (o) => onChange('delete', o));
    this.lw.on('connect', () => {
      this.restartDelayMs = 500;
    });
    this.lw.on('error', (err) => this.scheduleRestart(err));
  }

  /** Starts listing and watching; resolves when the cache is synced (retrying failed lists). */
  start(): Promise<void> {
    this.stopped = false;
    void this.lw.start().catch((err: unknown) => this.scheduleRestart(err));
    return this.synced;
  }

  private nextDelay(): number {
    const d = this.restartDelayMs;
    this.restartDelayMs = Math.min(30_000, this.restartDelayMs * 2);
    return d;
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
      if (!this.stopped) void this.lw.start().catch((e: unknown) => this.scheduleRestart(e));
    }, delay);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.lw.stop();
  }
}

/** A Watch that hands watch events' objects through `transform` (ERROR events carry a Status). */
function transforming<T>(watch: Watch, transform: ((obj: T) => T) | undefined): Watch {
  if (!transform) return watch;
  const wrapped: Pick<Watch, 'watch'> = {
    watch: (path, query, callback, done) =>
      watch.watch(
        path,
        query,
        (phase, obj, raw) => callback(phase, phase === 'ERROR' || !obj ? obj : transform(obj as T), raw),
        done,
      ),
  };
  return wrapped as Watch;
}
