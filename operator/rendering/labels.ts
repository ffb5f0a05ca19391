import type { DiscordBot } from '../api/v1alpha1/types.js';
import { GROUP, KIND, VERSION } from '../api/v1alpha1/schema.js';

export const FIELD_MANAGER = 'shardwarden-operator';
export const MANAGED_BY = 'shardwarden';
export const GENERATION_LABEL = 'shardwarden.io/gateway-generation';
export const SPEC_HASH_ANNOTATION = 'shardwarden.io/spec-hash';
export const SECRETS_CHECKSUM_ANNOTATION = 'shardwarden.io/secrets-checksum';

export type Component = 'gateway' | 'worker';

/** Labels that select one component of one bot. */
export function selectorLabels(bot: DiscordBot, component: Component): Record<string, string> {
  return { 'app.kubernetes.io/instance': bot.metadata.name, 'app.kubernetes.io/component': component };
}

export function commonLabels(bot: DiscordBot, component?: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'discordbot',
    'app.kubernetes.io/instance': bot.metadata.name,
    ...(component ? { 'app.kubernetes.io/component': component } : {}),
    'app.kubernetes.io/part-of': 'shardwarden',
    'app.kubernetes.io/managed-by': MANAGED_BY,
  };
}

export function ownerReference(bot: DiscordBot) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: KIND,
    name: bot.metadata.name,
    uid: bot.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function objectMeta(
  bot: DiscordBot,
  name: string,
  component?: Component,
  extraLabels: Record<string, string> = {},
) {
  return {
    name,
    namespace: bot.metadata.namespace,
    labels: { ...commonLabels(bot, component), ...extraLabels },
    ownerReferences: [ownerReference(bot)],
  };
}
