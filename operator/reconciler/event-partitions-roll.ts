// Which event partition count the pods are rendered with. A change of the count during a
// reshard would let the two generations, overlapping, forward the same dispatches into
// different partitions, whose claims live in different slots, so they would run twice: the new
// count waits until the shard count the spec asks for is the one running (docs/workers.md).
import type { V1StatefulSet } from '@kubernetes/client-node';
import { ENV } from '../../bot/runtime-contract.js';
import type { DiscordBot } from '../api/v1alpha1/types.js';

/** The count a gateway StatefulSet's pods run with (1 without the variable); none without one. */
export function runningEventPartitions(sts: V1StatefulSet | undefined): number | undefined {
  if (!sts) return undefined;
  const env = (sts.spec?.template.spec?.containers ?? []).flatMap((c) => c.env ?? []);
  const value = env.find((e) => e.name === ENV.eventPartitions)?.value;
  return value === undefined ? 1 : Number(value);
}

export interface EventPartitionsRoll {
  /** What the pods are rendered with. */
  partitions: number;
  /** Set while the spec's count waits for a reshard. */
  deferred?: { wanted: number; running: number };
}

/** The spec's count, unless a reshard is pending or running and the pods run another. */
export function eventPartitionsToApply(
  wanted: number,
  running: number | undefined,
  resharding: boolean,
): EventPartitionsRoll {
  if (!resharding || running === undefined || running === wanted) return { partitions: wanted };
  return { partitions: running, deferred: { wanted, running } };
}

/** `bot` as rendered with `partitions` event partitions. */
export function withEventPartitions(bot: DiscordBot, partitions: number): DiscordBot {
  if (bot.spec.redis.eventPartitions === partitions) return bot;
  return { ...bot, spec: { ...bot.spec, redis: { ...bot.spec.redis, eventPartitions: partitions } } };
}

/** What the EventPartitionsDeferred condition and Event say. */
export const deferredMessage = (d: { wanted: number; running: number }) =>
  `spec.redis.eventPartitions ${d.wanted} waits for the reshard to finish; the pods keep ${d.running} ` +
  '(changing the partition count while two gateway generations overlap could run a dispatch twice)';
