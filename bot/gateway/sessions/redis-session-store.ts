// Shard sessions (id, sequence, resume URL) in Redis, so a restarted cluster process or pod
// RESUMEs instead of identifying again. @discordjs/ws reports the sequence on every dispatch;
// writes are coalesced (at most one per interval, and never more than one in flight) and every
// current session is rewritten every ttl/3 so a quiet shard's key does not expire under it. A
// sequence that lags only means Discord replays a little more, and replays are de-duplicated
// downstream.
import type { RedisClient } from '../../configuration/redis-connection.js';
import { within } from '../../timing/within.js';

export interface SessionInfo {
  sessionId: string;
  sequence: number;
  resumeURL: string;
  shardCount: number;
  shardId: number;
}

export interface SessionFlushOptions {
  /** Write every current session, not only changed ones (shutdown: quiet shards too). */
  all?: boolean;
  /**
   * Reject after this long instead of waiting for a Redis that is away (the write stays queued
   * in ioredis). Without it, flush() waits as long as the connection does.
   */
  timeoutMs?: number;
}

export class RedisSessionStore {
  /** This process's sessions: authoritative once a shard has been looked up or updated here. */
  private readonly current = new Map<number, SessionInfo | null>();
  private readonly dirty = new Set<number>();
  /** A dirty change that must not wait for the interval (a new or cleared session). */
  private urgent = false;
  private timer?: NodeJS.Timeout;
  private refresher?: NodeJS.Timeout;
  /**
   * The one write in flight. With maxRetriesPerRequest: null a MULTI waits out an outage
   * instead of failing, so starting another per interval would pile commands up in ioredis.
   */
  private writing?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly redis: RedisClient,
    /** The bot's key prefix (queuePrefix): sessions are the bot's own, not its application's. */
    private readonly keyPrefix: string,
    private readonly shardCount: number,
    private readonly flushIntervalMs = 500,
    /** Discord keeps a session resumable for a limited time; older ones are useless. */
    private readonly ttlSeconds = 600,
    /** Lowers a sequence to what is safely enqueued (see DispatchForwarder.safeSequence). */
    private readonly safeSequence: (shardId: number, seq: number) => number = (_s, seq) => seq,
    /**
     * Where a release that keyed bots by name alone stored sessions: read when the current key
     * has none, so pods replaced by an upgrade RESUME (Discord replays what they missed) rather
     * than identify. Written never.
     */
    private readonly legacyKeyPrefix?: string,
  ) {}

  private key(shardId: number, prefix = this.keyPrefix): string {
    return [prefix, 'session', this.shardCount, shardId].join(':');
  }

  /**
   * @discordjs/ws asks on every dispatch and every heartbeat; only the first ask per
   * shard goes to Redis. `current` must never be cleared while the session lives: every later
   * ask is answered from memory, in the same number of microtasks for each frame, which keeps
   * @discordjs/ws emitting its dispatches in arrival order (a Redis round trip could let a later
   * frame overtake). A session read from Redis is kept alive from then on, dispatches or not.
   */
  async retrieve(shardId: number): Promise<{ info: SessionInfo | null; fromRedis: boolean }> {
    if (this.current.has(shardId)) return { info: this.current.get(shardId) ?? null, fromRedis: false };
    let raw = await this.redis.get(this.key(shardId));
    if (raw === null && this.legacyKeyPrefix) {
      // Moved, not copied: a later restart must not resume it a second time from the old key.
      // (Three commands: the two keys are in different hash slots.)
      const legacyKey = this.key(shardId, this.legacyKeyPrefix);
      raw = await this.redis.get(legacyKey);
      if (raw !== null) {
        // NX: a session this release wrote meanwhile is newer. The old one keeps its expiry
        // until the write-back below gives it this store's TTL.
        const ttlMs = await this.redis.pttl(legacyKey);
        await this.redis.set(this.key(shardId), raw, 'PX', ttlMs > 0 ? ttlMs : this.ttlSeconds * 1000, 'NX');
        await this.redis.del(legacyKey);
        raw = (await this.redis.get(this.key(shardId))) ?? raw;
      }
    }
    const info = raw ? (JSON.parse(raw) as SessionInfo) : null;
    if (!this.current.has(shardId)) this.current.set(shardId, info);
    // Recorded as an update: written back with a full TTL (the key may have little left) and
    // kept alive from then on, as every session this store holds.
    const current = this.current.get(shardId);
    if (current) this.update(shardId, current);
    return { info: this.current.get(shardId) ?? null, fromRedis: true };
  }

  /** The session a shard's dispatches are arriving in (set on READY, or read from Redis). */
  sessionId(shardId: number): string | undefined {
    return this.current.get(shardId)?.sessionId;
  }

  /** After stop() this only records the session; an explicit flush() still writes it. */
  update(shardId: number, info: SessionInfo | null): void {
    const previous = this.current.get(shardId);
    this.current.set(shardId, info ? { ...info } : null);
    this.dirty.add(shardId);
    if (this.stopped) return;
    if (info) this.refresher ??= setInterval(() => this.refreshAll(), (this.ttlSeconds * 1000) / 3).unref();
    // A new session (READY) or a cleared one is written at once: a process that dies right
    // after identifying must leave its session behind, and a dead one must not be resumed.
    // Only sequence updates of a known session are coalesced.
    if (info === null || info.sessionId !== previous?.sessionId) {
      this.urgent = true;
      this.kick();
    } else this.schedule(this.flushIntervalMs);
  }

  /**
   * Writes the changed sessions (with `all`, every current one) once any write in flight has
   * settled. Rejects if Redis refuses the write or `timeoutMs` passes first.
   */
  async flush(options: SessionFlushOptions = {}): Promise<void> {
    const run = this.flushAfterInFlight(options.all ?? false);
    const { timeoutMs } = options;
    if (timeoutMs === undefined) return run;
    run.catch(() => undefined); // if the timeout wins, a later failure has no one to tell
    await within(run, timeoutMs, () => {
      throw new Error(`session flush: Redis did not answer within timeoutMs=${timeoutMs}`);
    });
  }

  /**
   * No more writes of its own from here on (timers cleared): once another process may own
   * these shards, refreshing our sessions would overwrite theirs. A write already in flight
   * still lands.
   */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearInterval(this.refresher);
    this.refresher = undefined;
  }

  private async flushAfterInFlight(all: boolean): Promise<void> {
    while (this.writing) await this.writing.catch(() => undefined);
    if (all) this.markAllCurrent();
    await this.write();
  }

  private refreshAll(): void {
    this.markAllCurrent();
    this.kick();
  }

  private markAllCurrent(): void {
    for (const [shardId, info] of this.current) if (info) this.dirty.add(shardId);
  }

  private schedule(ms: number): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, ms);
  }

  /** Starts a write unless one is in flight; the end of that one starts the next. */
  private kick(): void {
    if (this.writing || this.stopped) return;
    void this.write().catch(() => undefined);
  }

  /** Only called with no write in flight. */
  private write(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.urgent = false;
    if (this.dirty.size === 0) return Promise.resolve();
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
    const run = multi.exec().then(
      () => {
        this.writing = undefined;
        this.afterWrite(false);
      },
      (err: unknown) => {
        // Redis refused: write these again later (with whatever is newest by then).
        for (const shardId of batch) this.dirty.add(shardId);
        this.writing = undefined;
        this.afterWrite(true);
        throw err;
      },
    );
    this.writing = run;
    return run;
  }

  /** What changed while the write was in flight goes out next, coalesced into one write. */
  private afterWrite(failed: boolean): void {
    if (this.stopped || this.dirty.size === 0) return;
    if (failed) this.schedule(this.flushIntervalMs * 4);
    else if (this.urgent) this.kick();
    else this.schedule(this.flushIntervalMs);
  }
}
