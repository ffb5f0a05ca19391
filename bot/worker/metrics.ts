// Worker metrics: job outcomes and latency per queue and type, and how fast interactions get
// their first response (Discord closes the window after 3 s).
import { Counter, Histogram, type Registry } from 'prom-client';

export class WorkerMetrics {
  readonly jobs: Counter<'queue' | 'type' | 'outcome'>;
  readonly dispatches: Counter<'type' | 'outcome'>;
  readonly jobDuration: Histogram<'queue' | 'type'>;
  readonly queueWait: Histogram<'queue'>;
  readonly interactionResponse: Histogram<'kind'>;
  readonly interactionsLate: Counter;
  readonly consumerRestarts: Counter<'queue'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.jobs = new Counter({
      name: 'shardwarden_worker_jobs_total',
      help: 'Jobs finished, by queue, type (dispatch, command or task name; batch for a batch of events) and outcome (completed|failed).',
      labelNames: ['queue', 'type', 'outcome'],
      registers,
    });
    this.dispatches = new Counter({
      name: 'shardwarden_worker_dispatches_total',
      help: 'Forwarded dispatches taken from event jobs, by type and outcome (completed|failed|held: not run, behind a failed dispatch of its guild, left for the retry|skipped: processed already, claimed by another job, or a second copy in the batch).',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.jobDuration = new Histogram({
      name: 'shardwarden_worker_job_duration_seconds',
      help: 'Time a worker spent on a job.',
      labelNames: ['queue', 'type'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.queueWait = new Histogram({
      name: 'shardwarden_worker_queue_wait_seconds',
      help: 'From the gateway receiving a dispatch (or a task being due) to a worker starting it.',
      labelNames: ['queue'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30],
      registers,
    });
    this.interactionResponse = new Histogram({
      name: 'shardwarden_worker_interaction_response_seconds',
      help: 'From the gateway receiving an interaction to its first response (reply or defer) being accepted.',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5],
      registers,
    });
    this.interactionsLate = new Counter({
      name: 'shardwarden_worker_interactions_expired_total',
      help: 'Interactions taken after their 3-second window had closed (not answered).',
      registers,
    });
    this.consumerRestarts = new Counter({
      name: 'shardwarden_worker_consumer_restarts_total',
      help: 'Queue consumers replaced because they had stopped taking waiting jobs (seen after a Redis Cluster master crashed), by queue.',
      labelNames: ['queue'],
      registers,
    });
  }
}
