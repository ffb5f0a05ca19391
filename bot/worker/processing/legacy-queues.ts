// Queues of releases that keyed a bot by its name alone (`shardwarden:{<name>}`). After an upgrade
// the gateways write under the namespace-and-name prefix, but jobs queued before it, and by
// gateway pods of the old release still rolling out (a StatefulSet rolls one pod at a time),
// wait under the old one. A worker of a bot the operator marks as the owner of those keys
// (ENV.legacyKeys: no other DiscordBot has its name) looks there every `checkEveryMs` and
// consumes them with its usual handlers while they hold jobs or saw activity in the last
// `idleMs`, so an interaction an old pod queues is answered at once, not at the next check.
// Nothing queued before an upgrade is lost; once the old queues are quiet, a check is one
// pipelined read. The same drain serves the event partitions a bot no longer writes, after
// its partition count was lowered (worker main.ts).
import { Queue } from 'bullmq';
import type { RedisClient } from '../../configuration/redis-connection.js';
import type { Logger } from 'pino';
import { PeriodicCheck } from '../../timing/periodic-check.js';
import { ALL_QUEUES, QUEUES, type QueueName } from '../../queues/queue-names.js';

/** What the drain runs while old jobs remain: the worker's own consumers on the old prefix. */
export interface Consumers {
  start(): void;
  close(timeoutMs: number): Promise<boolean>;
}

export interface LegacyQueueDrainOptions {
  redis: RedisClient;
  prefix: string;
  /** What the logs call these queues: `the old queue keys`, `event partition 5`. */
  what: string;
  consumers: (prefix: string) => Consumers;
  /** The queues looked at under `prefix` (all by default). */
  queues?: readonly QueueName[];
  checkEveryMs: number;
  /** Consumers stay while the old queues saw an add or a finished job this recently. */
  idleMs: number;
  log: Logger;
}

export interface OldQueueState {
  /** Jobs a consumer still has to take or finish, over every queue. */
  jobs: number;
  /** When any of the queues last changed (BullMQ's event stream), 0 if never. */
  lastActivityMs: number;
  /** Redis' own clock, which stamped those events: compared with it, not the pod's. */
  nowMs: number;
}

/** What is left under `prefix`: plain reads only (a BullMQ Queue object would write keys). */
export async function oldQueueState(
  redis: RedisClient,
  prefix: string,
  queues: readonly QueueName[] = ALL_QUEUES,
): Promise<OldQueueState> {
  const pipeline = redis.pipeline();
  for (const queue of queues) {
    const base = `${prefix}:${queue}`;
    pipeline.llen(`${base}:wait`);
    pipeline.llen(`${base}:active`);
    pipeline.zcard(`${base}:prioritized`);
    pipeline.zcard(`${base}:delayed`);
    pipeline.xrevrange(`${base}:events`, '+', '-', 'COUNT', 1);
  }
  // In the pipeline: the clock of the node that holds the keys (a keyless TIME of its own would
  // go to any master of a Redis Cluster).
  pipeline.time();
  const results = (await pipeline.exec()) ?? [];
  const [timeErr, time] = results.pop() ?? [new Error('no answer to TIME')];
  if (timeErr) throw timeErr;
  const [seconds, micros] = time as [string, string];
  let jobs = 0;
  let lastActivityMs = 0;
  for (const [err, value] of results) {
    if (err) throw err;
    if (Array.isArray(value)) {
      const id = (value[0] as [string, unknown] | undefined)?.[0];
      if (id) lastActivityMs = Math.max(lastActivityMs, Number(id.split('-')[0]));
    } else jobs += Number(value);
  }
  return { jobs, lastActivityMs, nowMs: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) };
}

export class LegacyQueueDrain {
  private running?: Consumers;
  private stopped = false;
  private readonly checks: PeriodicCheck;

  constructor(private readonly o: LegacyQueueDrainOptions) {
    this.checks = new PeriodicCheck(() => this.check(), o.checkEveryMs);
  }

  start(): void {
    this.checks.start();
  }

  /** Whether the old queues are being consumed now (for /readyz details and tests). */
  draining(): boolean {
    return this.running !== undefined;
  }

  private async check(): Promise<void> {
    try {
      if (!this.o.queues || this.o.queues.includes(QUEUES.tasks)) await this.removeOldSchedules();
      const { jobs, lastActivityMs, nowMs } = await oldQueueState(this.o.redis, this.o.prefix, this.o.queues);
      if (this.stopped) return;
      const wanted = jobs > 0 || nowMs - lastActivityMs < this.o.idleMs;
      if (wanted && !this.running) {
        this.o.log.info({ jobs, prefix: this.o.prefix }, `processing jobs queued under ${this.o.what}`);
        this.running = this.o.consumers(this.o.prefix);
        this.running.start();
      } else if (!wanted && this.running) {
        const running = this.running;
        this.running = undefined;
        await running.close(10_000);
        this.o.log.info({ prefix: this.o.prefix }, `${this.o.what}: empty and quiet`);
      }
    } catch (err) {
      this.o.log.warn(
        { err: (err as Error).message, prefix: this.o.prefix },
        `could not check ${this.o.what}; trying again`,
      );
    }
  }

  /**
   * The old release's repeating tasks: the new workers schedule their own under the new prefix,
   * so these would only keep the old queue from ever being empty. Read with a plain ZCARD first:
   * a BullMQ Queue object writes keys of its own, and a fresh install has nothing to remove.
   */
  private async removeOldSchedules(): Promise<void> {
    const { redis, prefix: legacyPrefix, log } = this.o;
    if ((await redis.zcard(`${legacyPrefix}:${QUEUES.tasks}:repeat`)) === 0) return;
    const schedules = new Queue(QUEUES.tasks, { connection: redis, prefix: legacyPrefix });
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
    await this.checks.stop(timeoutMs);
    const finished = this.running ? await this.running.close(timeoutMs) : true;
    this.running = undefined;
    return finished;
  }
}
