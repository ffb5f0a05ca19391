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
  private readonly dirty = new Map<number, SessionInfo | null>();
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

  async retrieve(shardId: number): Promise<SessionInfo | null> {
    if (this.dirty.has(shardId)) return this.dirty.get(shardId) ?? null;
    const raw = await this.redis.get(this.key(shardId));
    return raw ? (JSON.parse(raw) as SessionInfo) : null;
  }

  update(shardId: number, info: SessionInfo | null): void {
    this.dirty.set(shardId, info);
    // A cleared session must not be resumed by anyone: write that at once.
    if (info === null) void this.flush().catch(() => undefined);
    else this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), this.flushIntervalMs);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dirty.size === 0) return;
    const batch = [...this.dirty];
    this.dirty.clear();
    const multi = this.redis.multi();
    for (const [shardId, info] of batch) {
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
      // Redis is away: keep what was not written (unless newer news arrived) and try again.
      for (const [shardId, info] of batch) if (!this.dirty.has(shardId)) this.dirty.set(shardId, info);
      this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), this.flushIntervalMs * 4);
      throw err;
    }
  }
}
