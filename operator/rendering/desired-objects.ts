// Everything one DiscordBot owns, rendered from its spec and plan (the plan ConfigMap, Services,
// a StatefulSet and a PodDisruptionBudget per gateway generation, the worker Deployment and its
// PodDisruptionBudget); each object carries a hash of itself so an unchanged object is not
// applied again.
import { createHash } from 'node:crypto';
import type { KubernetesObject, V1Service } from '@kubernetes/client-node';
import type { PodComponent } from '../api/v1alpha1/secret-references.js';
import type { DiscordBot } from '../api/v1alpha1/types.js';
import { renderGatewayDisruptionBudget, renderWorkerDisruptionBudget } from './disruption-budgets.js';
import { renderGatewayService, renderGatewayStatefulSet } from './gateway.js';
import { SPEC_HASH_ANNOTATION } from './labels.js';
import { renderPlanConfigMap, type GenerationPlan } from './plan-config.js';
import type { PodRuntime } from './pods.js';
import {
  renderWorkerDeployment,
  renderWorkerMetricsService,
  renderWorkerPublicService,
  workerPublicServiceName,
} from './worker.js';

export interface DesiredInput extends PodRuntime {
  bot: DiscordBot;
  /** The generation serving now (the plan ConfigMap describes it). */
  active: GenerationPlan;
  /** Every gateway generation to run, each its own StatefulSet. */
  gateways: GenerationPlan[];
  /** Of the Secrets each component's pods read. */
  secretsChecksums: Record<PodComponent, string>;
  workerReplicas?: number;
}

export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

export function withSpecHash<T extends RenderedObject>(obj: T): T {
  const hash = createHash('sha256').update(JSON.stringify(obj)).digest('hex').slice(0, 16);
  return {
    ...obj,
    metadata: { ...obj.metadata, annotations: { ...obj.metadata.annotations, [SPEC_HASH_ANNOTATION]: hash } },
  };
}

export function renderDesiredObjects(input: DesiredInput): RenderedObject[] {
  const { bot, active, gateways } = input;
  const next = gateways.find((g) => g.generation !== active.generation);
  return [
    renderPlanConfigMap(bot, active, next),
    renderGatewayService(bot),
    renderWorkerMetricsService(bot),
    ...(bot.spec.worker.publicUrl ? [renderWorkerPublicService(bot)] : []),
    ...gateways.map((g) =>
      renderGatewayStatefulSet({ ...input, ...g, secretsChecksum: input.secretsChecksums.gateway }),
    ),
    ...gateways.map((g) => renderGatewayDisruptionBudget(bot, g.generation)),
    renderWorkerDeployment({
      ...input,
      secretsChecksum: input.secretsChecksums.worker,
      replicas: input.workerReplicas,
    }),
    renderWorkerDisruptionBudget(bot),
  ].map((o) => withSpecHash(o as RenderedObject));
}

/** An object the bot may own under a fixed name, to delete. */
export interface ObjectRef {
  apiVersion: string;
  kind: 'Service';
  metadata: { name: string; namespace: string };
}

/** Objects a bot owns under a fixed name that its spec no longer asks for (the reconciler prunes them). */
export function unwantedObjects(bot: DiscordBot): ObjectRef[] {
  const ref = (name: string): ObjectRef => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: bot.metadata.namespace },
  });
  return bot.spec.worker.publicUrl ? [] : [ref(workerPublicServiceName(bot))];
}

/**
 * A Service's clusterIP never changes once set, so one that must become headless (the worker
 * metrics Service of an older release) is deleted and created again rather than applied.
 */
export function mustRecreate(desired: RenderedObject, live: KubernetesObject | undefined): boolean {
  if (desired.kind !== 'Service' || !live) return false;
  const want = (desired.spec as { clusterIP?: string } | undefined)?.clusterIP;
  return want !== undefined && (live as V1Service).spec?.clusterIP !== want;
}

/** A checksum of the referenced Secrets' values (never the values), to roll pods on rotation. */
export function secretsChecksum(values: (string | undefined)[]): string {
  const h = createHash('sha256');
  for (const v of values) h.update(`${v ?? ''}\u0000`);
  return h.digest('hex').slice(0, 32);
}
