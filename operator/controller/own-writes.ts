// The resource versions the operator's own writes produced, so the informers can tell the
// watch event that only echoes such a write from a change made by anyone else.
//
// A reconcile that applies a bot's objects and writes its status sees every one of those writes
// come back as a watch event while it still runs, and the work queue runs the bot once more for
// them: twice the reconciles for every new bot (2.07 per bot in the 800-bot burst of
// `make bench-operator`), though that second pass only finds what the first one wrote. The
// apiserver answers a write with the stored object, whose resourceVersion is the one its watch
// event carries: an event at exactly that version changes nothing the operator does not know.
// Anything else (an edit, the controller-manager's status, a write that raced ours) has another
// version and is queued as before; an echo that overtakes its write's answer is queued too.
import type { KubernetesObject } from '@kubernetes/client-node';

export class OwnWrites {
  /** `kind/namespace/name` → the version the last own write of it produced, until its echo. */
  private readonly versions = new Map<string, string>();

  /** A write's answer: `kind` as written (a list's items carry none). */
  record(kind: string, stored: KubernetesObject | undefined): void {
    const version = stored?.metadata?.resourceVersion;
    if (version) this.versions.set(this.key(kind, stored), version);
  }

  /** True for the watch event of an own write's version (once); a deletion is never one. */
  isEcho(kind: string, obj: KubernetesObject, change: 'add' | 'update' | 'delete'): boolean {
    const key = this.key(kind, obj);
    const version = this.versions.get(key);
    if (change === 'delete' || version === undefined) {
      this.versions.delete(key);
      return false;
    }
    if (version !== obj.metadata?.resourceVersion) return false;
    this.versions.delete(key);
    return true;
  }

  /** Entries waiting for their echo (an echo that came first leaves one until the next write). */
  size(): number {
    return this.versions.size;
  }

  private key(kind: string, obj: KubernetesObject): string {
    return `${kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  }
}
