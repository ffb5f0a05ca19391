// REST paths of the kinds the operator writes. A fixed table instead of discovery: the operator
// only ever writes these, and a request for a kind whose API is not installed (KEDA's) is
// answered 404 all the same.
import type { KubernetesObject } from '@kubernetes/client-node';
import { GROUP, KIND, PLURAL, VERSION } from '../api/v1alpha1/schema.js';

/** Leases, which leader election reads and writes. */
export const LEASES = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases' } as const;

const PLURALS: Record<string, Record<string, string>> = {
  v1: { ConfigMap: 'configmaps', Event: 'events', Secret: 'secrets', Service: 'services' },
  'apps/v1': { Deployment: 'deployments', StatefulSet: 'statefulsets' },
  'policy/v1': { PodDisruptionBudget: 'poddisruptionbudgets' },
  [LEASES.apiVersion]: { [LEASES.kind]: LEASES.plural },
  'keda.sh/v1alpha1': { ScaledObject: 'scaledobjects', TriggerAuthentication: 'triggerauthentications' },
  [`${GROUP}/${VERSION}`]: { [KIND]: PLURAL },
};

/** `/api/v1` for the core group, `/apis/<group>/<version>` for the others. */
export function apiRoot(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/** The collection of a resource: in one namespace, or across all of them without one. */
export function collectionPath(apiVersion: string, plural: string, namespace?: string): string {
  return namespace
    ? `${apiRoot(apiVersion)}/namespaces/${encodeURIComponent(namespace)}/${plural}`
    : `${apiRoot(apiVersion)}/${plural}`;
}

/** The path of one namespaced object. */
export function namedPath(apiVersion: string, plural: string, namespace: string, name: string): string {
  return `${collectionPath(apiVersion, plural, namespace)}/${encodeURIComponent(name)}`;
}

/** The path of one (namespaced) object of a kind in the table above. */
export function objectPath(obj: KubernetesObject): string {
  const { apiVersion = '', kind = '' } = obj;
  const plural = PLURALS[apiVersion]?.[kind];
  if (!plural) throw new Error(`no REST path known for ${kind} ${apiVersion} (operator/kube/resources.ts)`);
  const { name, namespace } = obj.metadata ?? {};
  if (!name || !namespace) throw new Error(`${kind} needs metadata.name and metadata.namespace`);
  return namedPath(apiVersion, plural, namespace, name);
}
