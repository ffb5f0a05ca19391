// The BullMQ consumers of one worker process: interactions (high concurrency, answered inside
// 3 s), events (batches of forwarded dispatches, and the single-dispatch jobs of gateways
// before batching) and tasks (work the workers schedule themselves, such as role sync). Retries
// follow RETRY_POLICY set at enqueue time; failed jobs are kept and counted.
import { setTimeout as sleep } from 'node:timers/promises';
import { Job, Queue, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { RedisClient } from '../../configuration/redis-connection.js';
import {
  KEEP_FAILED_SECONDS,
  QUEUES,
  RETRY_POLICY,
  type DispatchJob,
  type QueueName,
} from '../../queues/queue-names.js';
import type { TaskScheduler, WorkerServices } from '../handlers/bot-module.js';
import type { HandlerRegistry } from '../handlers/handler-registry.js';
import type { InteractionDispatcher } from '../interactions/interaction-dispatcher.js';
import type { WorkerMetrics } from '../metrics.js';
import { PeriodicCheck } from '../../timing/periodic-check.js';
import { within } from '../../timing/within.js';
import { CLAIMS_WORKER_NAME } from './claim-format.js';
import type { ClaimOwner } from './dispatch-claims.js';
import { BatchIntake, batchParallelism, bodyKeyOf, loadDispatches } from './event-batch.js';
import { BatchFailure, type EventBatchRunner } from './event-batch-runner.js';
import {
  idleWithWorkSince,
  isStuck,
  STUCK_AFTER_MS,
  WATCH_EVERY_MS,
  worthCounting,
  type ConsumerActivity,
} from './stuck-consumer.js';

export interface WorkerRuntimeOptions {
  /** Shared by the BullMQ workers (each duplicates it for its blocking reads); closed by its owner. */
  connection: RedisClient;
  prefix: string;
  concurrency: Record<QueueName, number>;
  /** The queues to consume under `prefix`; all by default (an event partition has only events). */
  queues?: readonly QueueName[];
  registry: HandlerRegistry;
  dispatcher: InteractionDispatcher;
  services: WorkerServices;
  metrics: WorkerMetrics;
  /**
   * Runs the jobs of both events queues. One per process, shared with the consumers of the
   * queues under the pre-namespace keys: one claim key per dispatch whichever queue it came
   * from, one bound on handlers at once.
   */
  events: EventBatchRunner;
  log: Logger;
  /** The stuck-consumer watch's timing (stuck-consumer.ts); the defaults outside tests. */
  stuckAfterMs?: number;
  watchEveryMs?: number;
}

type Processor = (job: Job, token: string) => Promise<string>;

/** One BullMQ consumer of a queue, and what the stuck-consumer watch knows of it. */
class Consumer implements ConsumerActivity {
  inFlight = 0;
  lastStartedAt = Date.now();
  /** Since when it has had room and jobs waiting and started none (stuck-consumer.ts). */
  idleWithWorkSince: number | undefined;
  /** Set right after construction: the Worker's processor counts into this object. */
  worker!: Worker;
  private readonly onIdle: (() => void)[] = [];

  get concurrency(): number {
    return this.worker.concurrency;
  }

  started(at: number): void {
    this.inFlight += 1;
    this.lastStartedAt = at;
  }

  finished(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0) for (const resolve of this.onIdle.splice(0)) resolve();
  }

  /** Settles once no job of this consumer is running. */
  idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.onIdle.push(resolve));
  }
}

export class WorkerRuntime {
  private readonly consumers = new Map<QueueName, Consumer>();
  /** Consumers replaced by the watch, each with its closing (dropped once closed). */
  private readonly retired = new Map<Consumer, Promise<void>>();
  private readonly watches: PeriodicCheck;
  /** Whether the watch's last count failed (logged at warn once, until one succeeds). */
  private countFailing = false;
  private closing = false;
  /** Aborted by close(): cuts short the wait before a retired consumer is closed. */
  private readonly stopping = new AbortController();
  private readonly intake: BatchIntake;
  private readonly stuckAfterMs: number;
  private readonly watchEveryMs: number;

  constructor(private readonly o: WorkerRuntimeOptions) {
    this.intake = new BatchIntake(o.concurrency[QUEUES.events]);
    this.stuckAfterMs = o.stuckAfterMs ?? STUCK_AFTER_MS;
    this.watchEveryMs = o.watchEveryMs ?? WATCH_EVERY_MS;
    this.watches = new PeriodicCheck(() => this.watch(), this.watchEveryMs);
  }

  private readonly processors: Record<QueueName, Processor> = {
    [QUEUES.interactions]: async (job) => (await this.o.dispatcher.handle(job.data as DispatchJob)).type,
    [QUEUES.events]: (job, token) => this.processEvents(QUEUES.events, job, token),
    [QUEUES.singleEvents]: (job, token) => this.processEvents(QUEUES.singleEvents, job, token),
    [QUEUES.tasks]: (job) => this.processTask(job),
  };

  start(): void {
    for (const queue of this.o.queues ?? (Object.keys(this.processors) as QueueName[])) {
      this.consumers.set(queue, this.consume(queue));
    }
    this.watches.start();
  }

  /** A BullMQ Worker taking `queue`'s jobs, counted for the stuck-consumer watch. */
  private consume(queue: QueueName): Consumer {
    const consumer = new Consumer();
    const processor = this.processors[queue];
    consumer.worker = new Worker(
      queue,
      async (job: Job, token?: string) => {
        const started = Date.now();
        consumer.started(started);
        const dueAt = queue === QUEUES.tasks ? job.timestamp + (job.delay ?? 0) : receivedAt(job);
        this.o.metrics.queueWait.observe({ queue }, Math.max(0, started - dueAt) / 1000);
        // Known before running, so a failure is counted under the command or dispatch it was.
        let type = jobLabel(queue, job);
        try {
          type = await processor(job, token ?? '');
          this.o.metrics.jobs.inc({ queue, type, outcome: 'completed' });
          // Kept as the completed job's return value: what it did (the command, or why
          // nothing ran, e.g. `expired`), for whoever inspects the queue.
          return type;
        } catch (err) {
          this.o.metrics.jobs.inc({ queue, type, outcome: 'failed' });
          const attempts = job.opts.attempts ?? 1;
          this.o.log.warn(
            {
              queue,
              type,
              job: job.id,
              attempt: job.attemptsMade + 1,
              of: attempts,
              err: (err as Error).message,
            },
            job.attemptsMade + 1 >= attempts ? 'job failed; kept as failed' : 'job failed; will retry',
          );
          throw err;
        } finally {
          consumer.finished();
          this.o.metrics.jobDuration.observe({ queue, type }, (Date.now() - started) / 1000);
        }
      },
      {
        connection: this.o.connection,
        prefix: this.o.prefix,
        // A replacement events consumer starts at what BatchIntake allows now, as its predecessor had.
        concurrency: queue === QUEUES.events ? this.intake.jobs() : this.o.concurrency[queue],
        // Named: what tells this release's batch consumers from the per-key claims' (claim-format.ts).
        ...(queue === QUEUES.events ? { name: CLAIMS_WORKER_NAME } : {}),
        // Failed jobs stay for inspection; completed ones are kept by the producer's policy.
        autorun: true,
      },
    );
    // Once the completion is in Redis, not before: a job whose completion failed (its lock lost)
    // runs again and needs its body then.
    if (queue === QUEUES.events)
      consumer.worker.on('completed', (job: Job) => {
        const key = bodyKeyOf(job);
        if (key !== undefined) void this.deleteBody(key);
      });
    consumer.worker.on('error', (err) =>
      this.o.log.debug({ queue, err: err.message }, 'worker connection error'),
    );
    return consumer;
  }

  /**
   * Replaces each consumer that has had jobs waiting and room for them, and started none, for
   * stuckAfterMs (stuck-consumer.ts). A count that fails or takes longer than a look's interval
   * (Redis unreachable, or a command dropped as the one the watch exists for) tells nothing, and
   * every consumer's idle time starts again from the next answered count: the time a consumer
   * could not fetch because Redis did not answer is not time spent stuck.
   */
  private async watch(): Promise<void> {
    for (const [queue, consumer] of this.consumers) {
      if (this.closing) return;
      if (!worthCounting(consumer, Date.now(), this.watchEveryMs)) {
        consumer.idleWithWorkSince = undefined;
        continue;
      }
      const waiting = await this.countWaiting(queue);
      const now = Date.now();
      if (waiting === undefined) continue;
      consumer.idleWithWorkSince = idleWithWorkSince(consumer.idleWithWorkSince, consumer, waiting, now);
      if (!this.closing && isStuck(consumer.idleWithWorkSince, now, this.stuckAfterMs))
        this.replace(queue, consumer, waiting, now);
    }
  }

  /**
   * The jobs `queue` has ready to take (BullMQ's `wait` list and `prioritized` set, read directly:
   * a BullMQ Queue object would write the queue's meta hash), none while the queue is paused
   * (BullMQ 6.7 leaves a paused queue's jobs in `wait`: no consumer is stuck for not taking them),
   * or undefined when Redis did not answer in time, after which every consumer's idle time starts again.
   */
  private async countWaiting(queue: QueueName): Promise<number | undefined> {
    const key = `${this.o.prefix}:${queue}`;
    const redis = this.o.connection;
    const count = Promise.all([
      redis.llen(`${key}:wait`),
      redis.zcard(`${key}:prioritized`),
      redis.hexists(`${key}:meta`, 'paused'),
    ]);
    try {
      const [wait, prioritized, paused] = await within(count, this.watchEveryMs, () => {
        throw new Error(`no answer within ${this.watchEveryMs} ms`);
      });
      this.countFailing = false;
      return paused ? 0 : wait + prioritized;
    } catch (err) {
      for (const consumer of this.consumers.values()) consumer.idleWithWorkSince = undefined;
      const fields = { queue, prefix: this.o.prefix, err: (err as Error).message };
      const message =
        'stuck-consumer watch: could not count waiting jobs; watching again from the next count';
      if (this.countFailing) this.o.log.debug(fields, message);
      else this.o.log.warn(fields, message);
      this.countFailing = true;
      return undefined;
    }
  }

  private replace(queue: QueueName, stuck: Consumer, waiting: number, now: number): void {
    this.o.log.warn(
      { queue, prefix: this.o.prefix, waiting, idleForMs: now - stuck.idleWithWorkSince! },
      'a queue consumer stopped taking waiting jobs; replacing it',
    );
    this.o.metrics.consumerRestarts.inc({ queue });
    this.consumers.set(queue, this.consume(queue));
    this.retire(stuck);
  }

  /**
   * Stops a replaced consumer without losing the jobs it is running. Paused, it fetches nothing
   * new but still renews its jobs' locks and writes their completion or failure; it is closed,
   * forced because its own fetch may never settle, only once it is quiet (quietened()). A forced
   * close while jobs ran would stop both, so those jobs would stay active, stall, and run again
   * or go to failed.
   */
  private retire(consumer: Consumer): void {
    void consumer.worker.pause(true).catch(() => undefined);
    const closed = this.quietened(consumer)
      // Bounded, so a close that hangs like the fetch does not hold the runtime's shutdown.
      .then(() => within(consumer.worker.close(true), this.watchEveryMs, () => undefined))
      .catch(() => undefined)
      .finally(() => this.retired.delete(consumer));
    this.retired.set(consumer, closed);
  }

  /**
   * Settles once the paused consumer runs no job and started none for stuckAfterMs (or the
   * runtime closes, which then waits for its jobs). A fetch still pending when it was paused can
   * settle late (after an outage the watch took for a stuck fetch); BullMQ then still takes that
   * job and runs it, and it must be recorded, so the close waits that long first.
   */
  private async quietened(consumer: Consumer): Promise<void> {
    let seen: number | undefined;
    while (!this.closing && consumer.lastStartedAt !== seen) {
      seen = consumer.lastStartedAt;
      await consumer.idle();
      await sleep(this.stuckAfterMs, undefined, { signal: this.stopping.signal }).catch(() => undefined);
    }
    await consumer.idle();
  }

  /** Whether this runtime consumes `queue` under its prefix (an event partition: events only). */
  private consumes(queue: QueueName): boolean {
    return !this.o.queues || this.o.queues.includes(queue);
  }

  running(): boolean {
    const workers = [...this.consumers.values()].map((c) => c.worker);
    return !this.closing && workers.length > 0 && workers.every((w) => w.isRunning());
  }

  /** Stops taking jobs and waits for in-flight ones, up to `timeoutMs`; true when all finished. */
  async close(timeoutMs: number): Promise<boolean> {
    this.closing = true;
    this.stopping.abort();
    await this.watches.stop(0);
    const workers = [...this.consumers.values()].map((c) => c.worker);
    const graceful = Promise.all([...workers.map((w) => w.close()), ...this.retired.values()]).then(
      () => true,
    );
    const finished = await within(graceful, timeoutMs, () => false);
    if (!finished) {
      const all = [...workers, ...[...this.retired.keys()].map((c) => c.worker)];
      await Promise.all(all.map((w) => w.close(true).catch(() => undefined)));
    }
    return finished;
  }

  /**
   * A job of either events queue. This attempt (job id and lock token) owns the claims it takes;
   * a failed batch keeps only what is left to run, for its retries and the failed set.
   */
  private async processEvents(queue: QueueName, job: Job, token: string): Promise<string> {
    const bodyKey = bodyKeyOf(job);
    const dispatches = await loadDispatches(this.o.connection, job, async () => {
      const worker = this.consumers.get(queue)?.worker;
      return worker && job.id ? Job.fromId(worker, job.id) : undefined;
    });
    const batchWorker = queue === QUEUES.events ? this.consumers.get(queue)?.worker : undefined;
    if (batchWorker) batchWorker.concurrency = this.intake.observe(batchParallelism(dispatches));
    // BullMQ's keys are checked only in the claims' hash slot (not for pre-namespace queues).
    const sameSlot = this.o.events.claimsPrefix === this.o.prefix;
    const owner: ClaimOwner = {
      // With the prefix: the old keys' and the new keys' queues of one name are not one owner.
      job: `${this.o.prefix}:${queue}/${job.id}/`,
      token,
      ...(sameSlot ? { lockKey: `${this.o.prefix}:${queue}:${job.id}:lock` } : {}),
      ...(sameSlot && queue === QUEUES.events && this.consumes(QUEUES.singleEvents)
        ? { singleJobPrefix: `${this.o.prefix}:${QUEUES.singleEvents}:` }
        : {}),
    };
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    try {
      await this.o.events.run({ owner, lastAttempt }, dispatches);
    } catch (err) {
      if (queue === QUEUES.events && (err instanceof BatchFailure || bodyKey !== undefined)) {
        // Inline from now on: the retries and the failed set keep only what is left (all of it
        // after an error outside the handlers, e.g. a claim that timed out), and the body, no
        // longer referenced, goes (a failure to delete it leaves it to its expiry).
        const left = err instanceof BatchFailure ? err.remaining : dispatches;
        // The job fails with its own error whatever this does: a failed update (Redis gone) keeps
        // the body and the job's reference to it.
        try {
          await job.updateData({ dispatches: left });
          if (bodyKey !== undefined) await this.deleteBody(bodyKey);
        } catch (updateErr) {
          this.o.log.warn(
            { queue, job: job.id, err: (updateErr as Error).message },
            'could not cut the failed batch to what is left; it is retried as it was',
          );
        }
      }
      throw err;
    }
    return jobLabel(queue, job);
  }

  /** Deletes a batch body no job refers to any more; what fails to is left to its expiry. */
  private async deleteBody(key: string): Promise<void> {
    await this.o.connection
      .unlink(key)
      .catch((err: unknown) =>
        this.o.log.debug({ key, err: (err as Error).message }, 'could not delete a batch body; it expires'),
      );
  }

  private async processTask(job: Job): Promise<string> {
    const handler = this.o.registry.task(job.name);
    if (!handler) throw new Error(`no module handles task "${job.name}"`);
    await handler.run(job.data, this.o.services);
    return job.name;
  }
}

/** Task scheduling on the bot's tasks queue. */
export class QueueTaskScheduler implements TaskScheduler {
  readonly queue: Queue;

  constructor(connection: RedisClient, prefix: string) {
    this.queue = new Queue(QUEUES.tasks, { connection, prefix });
  }

  async enqueue(
    name: string,
    data: unknown,
    options: { jobId?: string; delayMs?: number } = {},
  ): Promise<void> {
    await this.queue.add(name, data, {
      ...RETRY_POLICY.tasks,
      ...(options.jobId ? { jobId: options.jobId } : {}),
      ...(options.delayMs ? { delay: options.delayMs } : {}),
      removeOnComplete: { age: 3600, count: 10_000 },
      removeOnFail: { age: KEEP_FAILED_SECONDS },
    });
  }

  async repeat(id: string, everyMs: number, name: string, data: unknown): Promise<void> {
    await this.queue.upsertJobScheduler(
      id,
      { every: everyMs },
      {
        name,
        data,
        opts: {
          ...RETRY_POLICY.tasks,
          removeOnComplete: { count: 100 },
          removeOnFail: { age: KEEP_FAILED_SECONDS },
        },
      },
    );
  }

  async cancel(id: string): Promise<void> {
    await this.queue.removeJobScheduler(id);
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** When the gateway received the job's (first) dispatch. */
function receivedAt(job: Job): number {
  const data = job.data as Partial<DispatchJob> & { dispatches?: DispatchJob[] };
  return data.dispatches?.[0]?.receivedAt ?? data.receivedAt ?? job.timestamp;
}

function jobLabel(queue: QueueName, job: Job): string {
  if (queue === QUEUES.tasks || queue === QUEUES.events) return job.name;
  const d = job.data as DispatchJob;
  if (queue === QUEUES.interactions) {
    const name = (d.d as { data?: { name?: unknown } } | undefined)?.data?.name;
    return typeof name === 'string' ? name : d.t;
  }
  return d.t;
}
