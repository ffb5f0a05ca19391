// The values of the Secrets bots reference, read on demand and kept per resourceVersion. The
// Secret informer caches only metadata (cache-transforms.ts): it says when a Secret changed, and
// a value is read again only then, so an idle operator sends no requests for Secrets.
import type { V1Secret } from '@kubernetes/client-node';
import { secretReferences } from '../api/v1alpha1/secret-references.js';
import type { DiscordBot } from '../api/v1alpha1/types.js';

/** The Secrets whose values reconcile reads for a bot: every one it references, each once. */
export function referencedSecretNames(bot: DiscordBot): string[] {
  return [...new Set(secretReferences(bot.spec).map((s) => s.ref.name))];
}

interface Loaded {
  resourceVersion: string | undefined;
  /** Undefined when the Secret was gone by the time it was read. */
  secret: V1Secret | undefined;
}

export class SecretValues {
  private readonly loaded = new Map<string, Loaded>();

  constructor(
    /** The informer's metadata-only copy. */
    private readonly metadata: (namespace: string, name: string) => V1Secret | undefined,
    /** Reads a Secret from the apiserver; undefined when it does not exist. */
    private readonly read: (namespace: string, name: string) => Promise<V1Secret | undefined>,
  ) {}

  /** Reads the named Secrets whose loaded value is older than the informer's metadata. */
  async load(namespace: string, names: readonly string[]): Promise<void> {
    for (const name of names) {
      const meta = this.metadata(namespace, name);
      const key = `${namespace}/${name}`;
      if (!meta) {
        this.loaded.delete(key);
        continue;
      }
      const rv = meta.metadata?.resourceVersion;
      if (this.loaded.get(key)?.resourceVersion === rv) continue;
      const secret = await this.read(namespace, name);
      this.loaded.set(key, {
        resourceVersion: rv,
        secret: secret && { metadata: meta.metadata, data: secret.data, type: secret.type },
      });
    }
  }

  /** The loaded Secret with its values, else the metadata alone (no values). */
  get(namespace: string, name: string): V1Secret | undefined {
    const meta = this.metadata(namespace, name);
    if (!meta) return undefined;
    const loaded = this.loaded.get(`${namespace}/${name}`);
    return loaded ? loaded.secret : meta;
  }

  /** Drops a deleted Secret's values. */
  forget(namespace: string | undefined, name: string | undefined): void {
    this.loaded.delete(`${namespace}/${name}`);
  }
}
