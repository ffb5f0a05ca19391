// The highest event partition count any gateway of a bot has written with: one key in the bot's
// own slot, raised (never lowered) by a gateway before its first write, so whoever must find
// every partition that may hold jobs reads one key instead of looking at all 64 (workers drain
// the partitions between their own count and it; the operator's backlog counts them).
import type { RedisClient } from '../configuration/redis-connection.js';
import { botKey, EVENT_PARTITIONS, type BotRef } from './queue-names.js';

/** `shardwarden:{<namespace>/<bot>}:event-partitions`; absent for a bot that only ever used 1. */
export function eventPartitionsKey(bot: BotRef): string {
  return botKey(bot, 'event-partitions');
}

/** Sets the key to ARGV[1] unless it already holds as much: atomic, and only upward. */
const RAISE = `local v = tonumber(redis.call('GET', KEYS[1])) or 1
if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return v`;

/**
 * Raises the bot's high-water mark to `count` (no TTL: it must outlive any queued job). One
 * partition is the floor the absent key already means: nothing to write.
 */
export async function raiseEventPartitions(redis: RedisClient, bot: BotRef, count: number): Promise<void> {
  if (count <= 1) return;
  await redis.eval(RAISE, 1, eventPartitionsKey(bot), String(count));
}

/** The stored value as a partition count: absent or unreadable is 1, above the bound is the bound. */
export function parseEventPartitions(value: string | null | undefined): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, EVENT_PARTITIONS.max) : 1;
}

/** The bot's high-water mark (1 for a bot that never used more). */
export async function readEventPartitions(redis: RedisClient, bot: BotRef): Promise<number> {
  return parseEventPartitions(await redis.get(eventPartitionsKey(bot)));
}

/** The partitions a worker of `own` partitions drains when gateways used up to `highWater`. */
export function partitionsToDrain(own: number, highWater: number): number[] {
  return Array.from({ length: Math.max(0, highWater - own) }, (_, i) => own + i);
}
