// Shard sessions (id, sequence, resume URL) in Redis, so a restarted cluster process or pod
// RESUMEs instead of identifying again. @discordjs/ws reports the sequence on every dispatch;
// writes are coalesced (at most one per shard per interval) and flushed on shutdown. A sequence
// that lags only means Discord replays a little more, and replays are de-duplicated downstream.
import type { Redis } from 'ioredis';
import { botKey } from '../../queues/queue-names.js';

export interface SessionInfo {
  sessionId: string;
  sequence: number;
  resumeURL: string;
  shardCount: number;
  shardId: number;
}

export class RedisSessionStore {
  /** This process's sessions: authoritative once a shard has been looked up or updated here. */
  private readonly current = new Map<number, SessionInfo | null>();
  private readonly dirty = new Set<number>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly botName: string,
    private readonly shardCount: number,
    private readonly flushIntervalMs = 500,
    /** Discord keeps a session resumable for a limited time; older ones are useless. */
    private readonly ttlSeconds = 600,
    /** Lowers a sequence to what is safely enqueued (see DispatchForwarder.safeSequence). */
    private readonly safeSequence: (shardId: number, seq: number) => number = (_s, seq) => seq,
  ) {}

  private key(shardId: number): string {
    return botKey(this.botName, 'session', this.shardCount, shardId);
  }

  /** @discordjs/ws asks on every dispatch; only the first ask per shard goes to Redis. */
  async retrieve(shardId: number): Promise<{ info: SessionInfo | null; fromRedis: boolean }> {
    if (this.current.has(shardId)) return { info: this.current.get(shardId) ?? null, fromRedis: false };
    const raw = await this.redis.get(this.key(shardId));
    const info = raw ? (JSON.parse(raw) as SessionInfo) : null;
    if (!this.current.has(shardId)) this.current.set(shardId, info);
    return { info: this.current.get(shardId) ?? null, fromRedis: true };
  }

  update(shardId: number, info: SessionInfo | null): void {
    const previous = this.current.get(shardId);
    this.current.set(shardId, info ? { ...info } : null);
    this.dirty.add(shardId);
    // A new session (READY) or a cleared one is written at once: a process that dies right
    // after identifying must leave its session behind, and a dead one must not be resumed.
    // Only sequence updates of a known session are coalesced.
    if (info === null || info.sessionId !== previous?.sessionId) void this.flush().catch(() => undefined);
    else this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), this.flushIntervalMs);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dirty.size === 0) return;
    const batch = [...this.dirty];
    this.dirty.clear();
    const multi = this.redis.multi();
    for (const shardId of batch) {
      const info = this.current.get(shardId) ?? null;
      if (info)
        multi.set(
          this.key(shardId),
          JSON.stringify({ ...info, sequence: this.safeSequence(shardId, info.sequence) }),
          'EX',
          this.ttlSeconds,
        );
      else multi.del(this.key(shardId));
    }
    try {
      await multi.exec();
    } catch (err) {
      // Redis is away: write these again later (with whatever is newest by then).
      for (const shardId of batch) this.dirty.add(shardId);
      this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), this.flushIntervalMs * 4);
      throw err;
    }
  }
}
