// Per-user command cooldowns in Redis: one SET NX PX per use, so they hold across all workers.
// A cooldown is anti-spam, not a guarantee: when Redis does not answer quickly the command runs
// (fail open) rather than miss Discord's 3-second window.
import type { RedisClient } from '../../configuration/redis-connection.js';
import { within } from '../../timing/within.js';

export class Cooldowns {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: (...parts: (string | number)[]) => string,
    private readonly timeoutMs = 1_000,
    private readonly onTimeout: () => void = () => {},
  ) {}

  /** Takes the cooldown; returns 0 when allowed, else the milliseconds left. */
  async take(command: string, userId: string, seconds: number): Promise<number> {
    const key = this.key('cooldown', command, userId);
    const check = async () => {
      const ok = await this.redis.set(key, '1', 'PX', Math.max(1, Math.ceil(seconds * 1000)), 'NX');
      if (ok === 'OK') return 0;
      return Math.max(1, await this.redis.pttl(key));
    };
    return within(check(), this.timeoutMs, () => {
      this.onTimeout();
      return 0;
    });
  }
}
