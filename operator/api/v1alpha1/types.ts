import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { DiscordBotSpec, DiscordBotStatus } from './types.generated.js';

export type { DiscordBotSpec, DiscordBotStatus } from './types.generated.js';
export type Condition = NonNullable<DiscordBotStatus['conditions']>[number];
export type ShardingSpec = DiscordBotSpec['sharding'];
export type WorkerSpec = DiscordBotSpec['worker'];
export type SecretKeyRef = DiscordBotSpec['tokenSecretRef'];
export type ReshardStatus = NonNullable<DiscordBotStatus['reshard']>;

/** A DiscordBot as read from the apiserver (defaults applied). */
export interface DiscordBot {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec: DiscordBotSpec;
  status?: DiscordBotStatus;
}
