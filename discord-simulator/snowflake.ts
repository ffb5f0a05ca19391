// Discord snowflakes: milliseconds since the Discord epoch in the top 42 bits.
export const DISCORD_EPOCH = 1420070400000n;

/** The shard a guild's events go to: (guild_id >> 22) % num_shards, as Discord documents. */
export function shardOfGuild(guildId: string | bigint, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}

/**
 * Hands out increasing snowflakes. Each one gets its own millisecond, so consecutive guild ids
 * spread evenly over shards, and a seeded generator gives the same ids every run.
 */
export class SnowflakeGenerator {
  private timestamp: bigint;
  constructor(startMs: bigint = 1700000000000n) {
    this.timestamp = startMs - DISCORD_EPOCH;
  }
  next(): string {
    this.timestamp += 1n;
    return String(this.timestamp << 22n);
  }
}
