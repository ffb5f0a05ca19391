// The operator's writes to the apiserver: server-side apply of owned objects and of the
// DiscordBot status (one field manager), and Events. Counts requests for the benchmark.
import {
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { GROUP, KIND, PLURAL, VERSION } from '../api/v1alpha1/schema.js';
import type { DiscordBot, DiscordBotStatus } from '../api/v1alpha1/types.js';
import { FIELD_MANAGER } from '../rendering/labels.js';

export type EventType = 'Normal' | 'Warning';

export class Cluster {
  private readonly objects: KubernetesObjectApi;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private eventSeq = 0;

  constructor(
    kc: KubeConfig,
    private readonly countRequest: (verb: string) => void = () => undefined,
  ) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /**
   * Server-side apply under the operator's field manager, taking ownership of conflicts.
   * Resolves to the object as the apiserver stored it.
   */
  async apply(obj: KubernetesObject): Promise<KubernetesObject> {
    this.countRequest('apply');
    return this.objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }

  /**
   * A JSON merge patch of one object, refused with 409 when it changed since `resourceVersion`
   * (in `target`), so a patch computed from a stale cache never lands.
   */
  async mergePatch(target: KubernetesObject, patch: Record<string, unknown>): Promise<KubernetesObject> {
    this.countRequest('patch');
    return this.objects.patch(
      {
        ...patch,
        apiVersion: target.apiVersion,
        kind: target.kind,
        metadata: { ...(patch.metadata as object | undefined), ...target.metadata },
      },
      undefined,
      undefined,
      FIELD_MANAGER,
      undefined,
      PatchStrategy.MergePatch,
    );
  }

  /**
   * Hands fields over without resetting them: applies `obj` (only the fields to give away,
   * with their live values) under another field manager, after which the operator's next
   * apply can omit them. Dropping a field we alone own would reset it (replicas to 1).
   */
  async handOver(obj: KubernetesObject, toManager: string): Promise<void> {
    this.countRequest('apply');
    await this.objects.patch(obj, undefined, undefined, toManager, true, PatchStrategy.ServerSideApply);
  }

  /** Deletes an object; one that is already gone (or whose kind is not installed) is fine. */
  async delete(obj: KubernetesObject): Promise<boolean> {
    this.countRequest('delete');
    try {
      await this.objects.delete(obj);
      return true;
    } catch (err) {
      if (apiserverCode(err) === 404) return false;
      throw err;
    }
  }

  async applyStatus(bot: DiscordBot, status: DiscordBotStatus): Promise<void> {
    this.countRequest('apply-status');
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: bot.metadata.namespace,
        name: bot.metadata.name,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: KIND,
          metadata: { name: bot.metadata.name, namespace: bot.metadata.namespace },
          status,
        },
        fieldManager: FIELD_MANAGER,
        force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
  }

  async event(bot: DiscordBot, type: EventType, reason: string, message: string): Promise<void> {
    this.countRequest('event');
    const now = new Date();
    this.eventSeq += 1;
    await this.core.createNamespacedEvent({
      namespace: bot.metadata.namespace,
      body: {
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
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: 'shardwarden-operator' },
        reportingComponent: 'shardwarden.io/operator',
        reportingInstance: 'shardwarden-operator',
      },
    });
  }
}

/** The HTTP status of an error the apiserver answered with; undefined for a network error. */
export function apiserverCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Error text for logs and status: the apiserver's message when there is one; never request headers. */
export function describeError(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (e?.body) {
    try {
      const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
      if (body?.message) return `HTTP ${e.code}: ${body.message}`;
    } catch {
      /* fall through */
    }
  }
  return e?.message ?? String(err);
}
