// The resource versions the operator's own writes produced, so the informers can tell the
// watch event that only echoes such a write from a change made by anyone else.
//
// A reconcile that applies a bot's objects and writes its status sees every one of those writes
// come back as a watch event while it still runs, and the work queue runs the bot once more for
// them: twice the reconciles for every new bot (2.07 per bot in the 800-bot burst of
// `make bench-operator`), though that second pass only finds what the first one wrote. The
// apiserver answers a write with the stored object, whose resourceVersion the watch event of
// that write carries. The version alone does not prove the write was ours: a write that changes
// nothing is answered with the object's latest version, which may be another writer's change
// the operator has not seen (a controller's status). So an event at an own write's version is
// an echo only if it also leaves alone what others write: a workload's status, a bot's spec,
// generation, labels and annotations, and nobody is deleting the object. A relist, which may
// fold several versions into one, and every deletion are never echoes; nor is an echo that
// overtakes its write's answer (harmless: one pass more).
import type { KubernetesObject } from '@kubernetes/client-node';
import { KIND } from '../api/v1alpha1/schema.js';
import { stableJson } from '../reconciler/stable-json.js';
import type { ChangeContext } from './informers.js';

type Change = 'add' | 'update' | 'delete';
type Described = KubernetesObject & { status?: unknown };

/** A status as the apiserver stores it on creation: every field zero, empty or absent. */
function blank(value: unknown): boolean {
  if (value === undefined || value === null || value === 0 || value === '' || value === false) return true;
  if (Array.isArray(value)) return value.every(blank);
  return typeof value === 'object' && Object.values(value).every(blank);
}

/** What someone other than the operator may have changed in an object of `kind`. */
function othersPart(kind: string, obj: Described): string {
  const { generation, labels, annotations, deletionTimestamp, finalizers } = obj.metadata ?? {};
  // The operator writes a bot's status and nothing else of it; everything else of the bot is others'.
  if (kind === KIND) return stableJson({ generation, labels, annotations, deletionTimestamp, finalizers });
  // The operator applies an owned object's spec and metadata; its status is the controllers'.
  return stableJson({ status: obj.status ?? null, deletionTimestamp });
}

export class OwnWrites {
  /** `kind/namespace/name` → the version the last own write of it produced, until its echo. */
  private readonly versions = new Map<string, string>();

  /** A write's answer: `kind` as written (a list's items carry none). */
  record(kind: string, stored: KubernetesObject | undefined): void {
    const version = stored?.metadata?.resourceVersion;
    if (version) this.versions.set(this.key(kind, stored), version);
  }

  /** True for the watch event of an own write (once), per the rules above. */
  isEcho(
    kind: string,
    obj: KubernetesObject,
    change: Change,
    context: ChangeContext<KubernetesObject>,
  ): boolean {
    const key = this.key(kind, obj);
    const version = this.versions.get(key);
    if (change === 'delete' || version === undefined) {
      this.versions.delete(key);
      return false;
    }
    if (version !== obj.metadata?.resourceVersion) return false;
    this.versions.delete(key);
    if (context.relisted) return false;
    // New to the cache: an object the apply created has no status yet. One it had only put
    // back (someone took its label away, so the watch said deleted) comes back with the
    // controllers' status, which the operator has not seen. A bot is never created by it.
    if (change === 'add')
      return kind !== KIND && blank((obj as Described).status) && !obj.metadata?.deletionTimestamp;
    return !!context.previous && othersPart(kind, context.previous) === othersPart(kind, obj);
  }

  /** Entries waiting for their echo (an echo that came first leaves one until the next write). */
  size(): number {
    return this.versions.size;
  }

  private key(kind: string, obj: KubernetesObject): string {
    return `${kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  }
}
