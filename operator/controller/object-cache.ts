// An informer's cache: objects by namespace and name, and what each list or watch event changed
// in it (an object seen again at the same resourceVersion is no change). Optionally indexed by
// controller owner and by name, as client-go's indexers: a reconcile asks for one bot's objects
// and an event for the bots of one name, and copying a namespace of a thousand bots' objects
// for each was over a quarter of everything the operator allocated (docs/benchmarks.md).
import type { KubernetesObject } from '@kubernetes/client-node';

export type Change = 'add' | 'update' | 'delete';

/** Which lookups a cache keeps an index for (each costs an entry per object). */
export interface CacheIndexes {
  byOwner?: boolean;
  byName?: boolean;
}

const keyOf = (obj: KubernetesObject) => `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;

/** The UID of the object's controller (the ownerReference with `controller: true`). */
export const controllerUid = (obj: KubernetesObject): string | undefined =>
  obj.metadata?.ownerReferences?.find((o) => o.controller)?.uid;

/** Objects by one computed value (owner UID, name), each set keyed by namespace/name. */
class Index<T extends KubernetesObject> {
  private readonly byValue = new Map<string, Map<string, T>>();

  constructor(private readonly valueOf: (obj: T) => string | undefined) {}

  add(obj: T): void {
    const value = this.valueOf(obj);
    if (value === undefined) return;
    let objects = this.byValue.get(value);
    if (!objects) this.byValue.set(value, (objects = new Map()));
    objects.set(keyOf(obj), obj);
  }

  delete(obj: T): void {
    const value = this.valueOf(obj);
    const objects = value === undefined ? undefined : this.byValue.get(value);
    if (!objects?.delete(keyOf(obj))) return;
    if (objects.size === 0) this.byValue.delete(value!);
  }

  get(value: string): T[] {
    return [...(this.byValue.get(value)?.values() ?? [])];
  }
}

export class ObjectCache<T extends KubernetesObject> {
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private readonly byOwner?: Index<T>;
  private readonly byName?: Index<T>;

  constructor(indexes: CacheIndexes = {}) {
    if (indexes.byOwner) this.byOwner = new Index<T>(controllerUid);
    if (indexes.byName) this.byName = new Index<T>((obj) => obj.metadata?.name);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.byNamespace.get(namespace ?? '')?.get(name);
  }

  list(namespace?: string): T[] {
    if (namespace) return [...(this.byNamespace.get(namespace)?.values() ?? [])];
    return [...this.byNamespace.values()].flatMap((m) => [...m.values()]);
  }

  /** The objects whose controller is the object with this UID (a cache made `byOwner`). */
  listOwnedBy(ownerUid: string): T[] {
    if (!this.byOwner) throw new Error('listOwnedBy: this cache keeps no owner index');
    return this.byOwner.get(ownerUid);
  }

  /** The objects of this name, in every namespace (a cache made `byName`). */
  listNamed(name: string): T[] {
    if (!this.byName) throw new Error('listNamed: this cache keeps no name index');
    return this.byName.get(name);
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
    // The owner can change between versions (an orphaned object adopted).
    if (old) this.unindex(old);
    this.byOwner?.add(obj);
    this.byName?.add(obj);
    return old ? 'update' : 'add';
  }

  /** Forgets an object; undefined when it was not there. */
  remove(obj: T): Change | undefined {
    const ns = obj.metadata?.namespace ?? '';
    const objects = this.byNamespace.get(ns);
    const old = objects?.get(obj.metadata?.name ?? '');
    if (!objects || !old) return undefined;
    objects.delete(obj.metadata?.name ?? '');
    if (objects.size === 0) this.byNamespace.delete(ns);
    this.unindex(old);
    return 'delete';
  }

  private unindex(obj: T): void {
    this.byOwner?.delete(obj);
    this.byName?.delete(obj);
  }

  /** Makes the cache hold exactly `items` (a fresh list); the changes, deletions first. */
  replace(items: readonly T[]): [Change, T][] {
    const listed = new Set(items.map(keyOf));
    const changes: [Change, T][] = [];
    for (const old of this.list())
      if (!listed.has(keyOf(old)) && this.remove(old)) changes.push(['delete', old]);
    for (const obj of items) {
      const change = this.put(obj);
      if (change) changes.push([change, obj]);
    }
    return changes;
  }
}
