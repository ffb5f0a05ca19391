// Per-user command cooldowns in Redis: one SET NX PX per use, so they hold across all workers.
import type { Redis } from 'ioredis';

export class Cooldowns {
  constructor(
    private readonly redis: Redis,
    private readonly key: (...parts: (string | number)[]) => string,
  ) {}

  /** Takes the cooldown; returns 0 when allowed, else the milliseconds left. */
  async take(command: string, userId: string, seconds: number): Promise<number> {
    const key = this.key('cooldown', command, userId);
    const ok = await this.redis.set(key, '1', 'PX', Math.max(1, Math.ceil(seconds * 1000)), 'NX');
    if (ok === 'OK') return 0;
    return Math.max(1, await this.redis.pttl(key));
  }
}
