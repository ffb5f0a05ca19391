// Queues of releases that keyed a bot by its name alone (`shardwarden:{<name>}`). After an upgrade
// the gateways write under the namespace-and-name prefix, but jobs queued before it (and by
// gateway pods of the old release still rolling out) wait under the old one. Every worker looks
// there every `checkEveryMs` and processes what it finds with its usual handlers, then stops
// consuming until something appears again: nothing queued before an upgrade is lost, and an idle
// bot pays one pipelined read per check.
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ALL_QUEUES, QUEUES } from '../../queues/queue-names.js';

/** What the drain runs while old jobs remain: the worker's own consumers on the old prefix. */
export interface Consumers {
  start(): void;
  close(timeoutMs: number): Promise<boolean>;
}

export interface LegacyQueueDrainOptions {
  redis: Redis;
  redisUrl: string;
  legacyPrefix: string;
  consumers: (prefix: string) => Consumers;
  checkEveryMs: number;
  log: Logger;
}

/** Jobs under `prefix` that a consumer still has to take or finish, over every queue. */
export async function queuedJobs(redis: Redis, prefix: string): Promise<number> {
  const pipeline = redis.pipeline();
  for (const queue of ALL_QUEUES) {
    const base = `${prefix}:${queue}`;
    pipeline.llen(`${base}:wait`);
    pipeline.llen(`${base}:paused`);
    pipeline.llen(`${base}:active`);
    pipeline.zcard(`${base}:prioritized`);
    pipeline.zcard(`${base}:delayed`);
  }
  const results = (await pipeline.exec()) ?? [];
  let total = 0;
  for (const [err, n] of results) {
    if (err) throw err;
    total += Number(n);
  }
  return total;
}

export class LegacyQueueDrain {
  private timer?: NodeJS.Timeout;
  private running?: Consumers;
  private checking?: Promise<void>;
  private stopped = false;

  constructor(private readonly o: LegacyQueueDrainOptions) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.o.checkEveryMs);
    this.timer.unref();
  }

  /** One check at a time: a slow Redis does not stack them up. */
  private tick(): void {
    this.checking ??= this.check().finally(() => {
      this.checking = undefined;
    });
  }

  /** Whether the old queues are being consumed now (for /readyz details and tests). */
  draining(): boolean {
    return this.running !== undefined;
  }

  private async check(): Promise<void> {
    try {
      await this.removeOldSchedules();
      const jobs = await queuedJobs(this.o.redis, this.o.legacyPrefix);
      if (this.stopped) return;
      if (jobs > 0 && !this.running) {
        this.o.log.info(
          { jobs, prefix: this.o.legacyPrefix },
          'processing jobs queued under the old queue keys',
        );
        this.running = this.o.consumers(this.o.legacyPrefix);
        this.running.start();
      } else if (jobs === 0 && this.running) {
        const running = this.running;
        this.running = undefined;
        await running.close(10_000);
        this.o.log.info({ prefix: this.o.legacyPrefix }, 'the old queue keys are empty');
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'could not check the old queue keys; trying again');
    }
  }

  /**
   * The old release's repeating tasks: the new workers schedule their own under the new prefix,
   * so these would only keep the old queue from ever being empty. Read with a plain ZCARD first:
   * a BullMQ Queue object writes keys of its own, and a fresh install has nothing to remove.
   */
  private async removeOldSchedules(): Promise<void> {
    const { redis, redisUrl, legacyPrefix, log } = this.o;
    if ((await redis.zcard(`${legacyPrefix}:${QUEUES.tasks}:repeat`)) === 0) return;
    const schedules = new Queue(QUEUES.tasks, { connection: { url: redisUrl }, prefix: legacyPrefix });
    schedules.on('error', () => undefined);
    try {
      for (const s of await schedules.getJobSchedulers()) {
        await schedules.removeJobScheduler(s.key);
        log.info({ scheduler: s.key, prefix: legacyPrefix }, 'removed a task schedule of the old queue keys');
      }
    } finally {
      await schedules.close().catch(() => undefined);
    }
  }

  /** Stops checking and closes the old queues' consumers (waiting for their jobs up to `timeoutMs`). */
  async close(timeoutMs: number): Promise<boolean> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.checking?.catch(() => undefined);
    const finished = this.running ? await this.running.close(timeoutMs) : true;
    this.running = undefined;
    return finished;
  }
}
