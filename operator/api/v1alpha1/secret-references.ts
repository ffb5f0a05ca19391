// Every Secret a DiscordBot references, in one list: the operator watches these, refuses to run
// without them, and rolls the pods that read one when its value changes.
import type { DiscordBotSpec, SecretKeyRef } from './types.js';

export type PodComponent = 'gateway' | 'worker';

export interface SecretReference {
  /** What the value is, for messages (never the value). */
  purpose: string;
  ref: SecretKeyRef;
  /** The pods that read it: only they roll when it changes. */
  readBy: readonly PodComponent[];
}

const BOTH: readonly PodComponent[] = ['gateway', 'worker'];
const WORKERS: readonly PodComponent[] = ['worker'];

export function secretReferences(spec: DiscordBotSpec): SecretReference[] {
  const { database, chain } = spec;
  return [
    { purpose: 'Discord token', ref: spec.tokenSecretRef, readBy: BOTH },
    { purpose: 'Redis URL', ref: spec.redis.urlSecretRef, readBy: BOTH },
    ...(database ? [{ purpose: 'database URL', ref: database.urlSecretRef, readBy: WORKERS }] : []),
    ...(database?.migrationUrlSecretRef
      ? [
          {
            purpose: 'database migration URL',
            ref: database.migrationUrlSecretRef,
            readBy: WORKERS,
          },
        ]
      : []),
    ...(chain?.rpcUrlsSecretRef
      ? [{ purpose: 'chain RPC URLs', ref: chain.rpcUrlsSecretRef, readBy: WORKERS }]
      : []),
  ];
}
