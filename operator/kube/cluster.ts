// The operator's writes to the apiserver: server-side apply of owned objects and of the
// DiscordBot status (one field manager), and Events. Counts and times requests (metrics, and
// the benchmark's figures).
import type { KubernetesObject } from '@kubernetes/client-node';
import { GROUP, KIND, VERSION } from '../api/v1alpha1/schema.js';
import type { DiscordBot, DiscordBotStatus } from '../api/v1alpha1/types.js';
import { FIELD_MANAGER } from '../rendering/labels.js';
import type { KubeClient } from './api-client.js';
import { collectionPath, objectPath } from './resources.js';

export type EventType = 'Normal' | 'Warning';

export class Cluster {
  private eventSeq = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly countRequest: (verb: string) => void = () => undefined,
    private readonly timeRequest: (verb: string, seconds: number) => void = () => undefined,
  ) {}

  /** One request, counted when sent and timed until answered (or failed). */
  private async send<T>(verb: string, request: () => Promise<T>): Promise<T> {
    this.countRequest(verb);
    const start = performance.now();
    try {
      return await request();
    } finally {
      this.timeRequest(verb, (performance.now() - start) / 1000);
    }
  }

  /**
   * Server-side apply under the operator's field manager, taking ownership of conflicts.
   * Resolves to the object as the apiserver stored it.
   */
  async apply(obj: KubernetesObject): Promise<KubernetesObject> {
    return this.send('apply', () => this.client.apply(objectPath(obj), obj, FIELD_MANAGER, true));
  }

  /**
   * A JSON merge patch of one object, refused with 409 when it changed since `resourceVersion`
   * (in `target`), so a patch computed from a stale cache never lands.
   */
  async mergePatch(target: KubernetesObject, patch: Record<string, unknown>): Promise<KubernetesObject> {
    return this.send('patch', () =>
      this.client.mergePatch(
        objectPath(target),
        {
          ...patch,
          apiVersion: target.apiVersion,
          kind: target.kind,
          metadata: { ...(patch.metadata as object | undefined), ...target.metadata },
        },
        FIELD_MANAGER,
      ),
    );
  }

  /**
   * Hands fields over without resetting them: applies `obj` (only the fields to give away,
   * with their live values) under another field manager, after which the operator's next
   * apply can omit them. Dropping a field we alone own would reset it (replicas to 1).
   */
  async handOver(obj: KubernetesObject, toManager: string): Promise<void> {
    await this.send('apply', () => this.client.apply(objectPath(obj), obj, toManager, true));
  }

  /** Deletes an object; one that is already gone (or whose kind is not installed) is fine. */
  async delete(obj: KubernetesObject): Promise<boolean> {
    try {
      await this.send('delete', () => this.client.delete(objectPath(obj)));
      return true;
    } catch (err) {
      if (apiserverCode(err) === 404) return false;
      throw err;
    }
  }

  async applyStatus(bot: DiscordBot, status: DiscordBotStatus): Promise<void> {
    const { name, namespace } = bot.metadata;
    const body = { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, metadata: { name, namespace }, status };
    await this.send('apply-status', () =>
      this.client.apply(`${objectPath(body)}/status`, body, FIELD_MANAGER, true),
    );
  }

  async event(bot: DiscordBot, type: EventType, reason: string, message: string): Promise<void> {
    const now = new Date();
    this.eventSeq += 1;
    await this.send('event', () =>
      this.client.create(collectionPath('v1', 'events', bot.metadata.namespace), {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: {
          name: `${bot.metadata.name}.${now.getTime().toString(16)}${this.eventSeq.toString(16)}`,
          namespace: bot.metadata.namespace,
        },
        involvedObject: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: KIND,
          name: bot.metadata.name,
          namespace: bot.metadata.namespace,
          uid: bot.metadata.uid,
          resourceVersion: bot.metadata.resourceVersion,
        },
        type,
        reason,
        message,
        count: 1,
        firstTimestamp: now.toISOString(),
        lastTimestamp: now.toISOString(),
        source: { component: 'shardwarden-operator' },
        reportingComponent: 'shardwarden.io/operator',
        reportingInstance: 'shardwarden-operator',
      }),
    );
  }
}

/** The HTTP status of an error the apiserver answered with; undefined for a network error. */
export function apiserverCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Error text for logs and status: an ApiError's message is already the HTTP code and the
 * apiserver's message (api-client.ts), never request headers.
 */
export function describeError(err: unknown): string {
  return (err as Error | undefined)?.message ?? String(err);
}
