import type { V1Secret } from '@kubernetes/client-node';
import type { SecretKeyRef } from '../api/v1alpha1/types.js';

export type SecretValue = { value: string } | { missing: string };

/** Reads one key of a Secret from the cache; the problem text names the Secret and key, never a value. */
export function readSecretKey(
  secret: V1Secret | undefined,
  namespace: string,
  ref: SecretKeyRef,
  purpose: string,
): SecretValue {
  if (!secret) return { missing: `Secret ${namespace}/${ref.name} (${purpose}) does not exist` };
  const encoded = secret.data?.[ref.key];
  const plain = secret.stringData?.[ref.key];
  if (encoded === undefined && plain === undefined) {
    return { missing: `Secret ${namespace}/${ref.name} has no key "${ref.key}" (${purpose})` };
  }
  const value = plain ?? Buffer.from(encoded!, 'base64').toString('utf8');
  if (value.trim() === '')
    return { missing: `Secret ${namespace}/${ref.name} key "${ref.key}" (${purpose}) is empty` };
  return { value: value.trim() };
}
