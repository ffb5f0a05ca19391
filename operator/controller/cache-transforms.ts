// What the informer caches keep of each object: only what reconcile reads, like controller-
// runtime's cache transforms. The apiserver sends every object whole, with managedFields (often
// larger than the object) and, for anything made by `kubectl apply`, a copy of the whole object
// in the last-applied-configuration annotation (a Secret's values included); cached as is, a
// thousand bots and a shared cluster's Secrets held hundreds of megabytes.
import type { KubernetesObject, V1Deployment, V1ManagedFieldsEntry, V1Secret } from '@kubernetes/client-node';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** Annotations the operator reads back (spec hashes on objects it applied). */
const OWN_ANNOTATION_PREFIX = 'shardwarden.io/';

/** Without managedFields and the last-applied copy; everything else as it came. */
export function slimObject<T extends KubernetesObject>(obj: T): T {
  const { managedFields: _managed, annotations, ...metadata } = obj.metadata ?? {};
  const kept = annotations && Object.entries(annotations).filter(([k]) => k !== LAST_APPLIED);
  return {
    ...obj,
    metadata: { ...metadata, ...(kept && kept.length > 0 ? { annotations: Object.fromEntries(kept) } : {}) },
  };
}

/**
 * A Deployment keeps, of its managedFields, only who owns spec.replicas: the worker autoscaler
 * hands replicas over before it stops writing them (reconciler/worker-scaling.ts).
 */
export function slimDeployment(deployment: V1Deployment): V1Deployment {
  const replicasOwners = (deployment.metadata?.managedFields ?? []).flatMap((m): V1ManagedFieldsEntry[] =>
    (m.fieldsV1 as { 'f:spec'?: Record<string, unknown> } | undefined)?.['f:spec']?.['f:replicas']
      ? [{ manager: m.manager, operation: m.operation, fieldsV1: { 'f:spec': { 'f:replicas': {} } } }]
      : [],
  );
  const slim = slimObject(deployment);
  return replicasOwners.length > 0
    ? { ...slim, metadata: { ...slim.metadata, managedFields: replicasOwners } }
    : slim;
}

/**
 * A Secret's identity and the operator's own annotations, never its values: most Secrets in a
 * cluster are not the operator's business, and the few a bot references are read on demand
 * (secret-values.ts). The informer lists and watches Secrets as metadata only already; this
 * drops what metadata still carries (managedFields, a last-applied copy that can hold values).
 */
export function secretMetadata(secret: V1Secret): V1Secret {
  const m = secret.metadata ?? {};
  const own = Object.entries(m.annotations ?? {}).filter(([k]) => k.startsWith(OWN_ANNOTATION_PREFIX));
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      ...(own.length > 0 ? { annotations: Object.fromEntries(own) } : {}),
    },
  };
}
