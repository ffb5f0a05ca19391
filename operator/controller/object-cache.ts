// An informer's cache: objects by namespace and name, and what each list or watch event changed
// in it (an object seen again at the same resourceVersion is no change).
import type { KubernetesObject } from '@kubernetes/client-node';

export type Change = 'add' | 'update' | 'delete';

export class ObjectCache<T extends KubernetesObject> {
  private readonly byNamespace = new Map<string, Map<string, T>>();

  get(name: string, namespace?: string): T | undefined {
    return this.byNamespace.get(namespace ?? '')?.get(name);
  }

  list(namespace?: string): T[] {
    if (namespace) return [...(this.byNamespace.get(namespace)?.values() ?? [])];
    return [...this.byNamespace.values()].flatMap((m) => [...m.values()]);
  }

  /** Stores an object; undefined when the same version was already there. */
  put(obj: T): Change | undefined {
    const ns = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let objects = this.byNamespace.get(ns);
    if (!objects) this.byNamespace.set(ns, (objects = new Map()));
    const old = objects.get(name);
    const version = obj.metadata?.resourceVersion;
    if (old && version !== undefined && old.metadata?.resourceVersion === version) return undefined;
    objects.set(name, obj);
    return old ? 'update' : 'add';
  }

  /** Forgets an object; undefined when it was not there. */
  remove(obj: T): Change | undefined {
    const ns = obj.metadata?.namespace ?? '';
    const objects = this.byNamespace.get(ns);
    if (!objects?.delete(obj.metadata?.name ?? '')) return undefined;
    if (objects.size === 0) this.byNamespace.delete(ns);
    return 'delete';
  }

  /** Makes the cache hold exactly `items` (a fresh list); the changes, deletions first. */
  replace(items: readonly T[]): [Change, T][] {
    const listed = new Set(items.map((o) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`));
    const changes: [Change, T][] = [];
    for (const old of this.list())
      if (!listed.has(`${old.metadata?.namespace ?? ''}/${old.metadata?.name ?? ''}`) && this.remove(old))
        changes.push(['delete', old]);
    for (const obj of items) {
      const change = this.put(obj);
      if (change) changes.push([change, obj]);
    }
    return changes;
  }
}
