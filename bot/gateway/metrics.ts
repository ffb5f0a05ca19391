// Gateway metrics. Each cluster process records its own; the pod's /metrics aggregates them
// (prom-client's cluster aggregation over Kurasuta's worker processes).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class GatewayMetrics {
  readonly shardStatus: Gauge;
  readonly heartbeatLatency: Gauge;
  readonly received: Counter;
  readonly forwarded: Counter;
  readonly dropped: Counter;
  readonly overflow: Counter;
  readonly enqueueErrors: Counter;
  readonly batchSize: Histogram;
  readonly enqueueLatency: Histogram;
  readonly identifyWait: Histogram;
  readonly sessionStarts: Counter;
  readonly bufferDepth: Gauge;
  readonly batchBodies: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.shardStatus = new Gauge({
      name: 'shardwarden_gateway_shard_ready',
      help: '1 when the shard is READY (or RESUMED), else 0.',
      labelNames: ['shard'],
      registers,
    });
    this.heartbeatLatency = new Gauge({
      name: 'shardwarden_gateway_heartbeat_latency_seconds',
      help: 'Last heartbeat round trip per shard.',
      labelNames: ['shard'],
      registers,
    });
    this.received = new Counter({
      name: 'shardwarden_gateway_dispatches_received_total',
      help: 'Dispatches received, by type.',
      labelNames: ['type'],
      registers,
    });
    this.forwarded = new Counter({
      name: 'shardwarden_gateway_dispatches_forwarded_total',
      help: 'Dispatches enqueued, by type.',
      labelNames: ['type'],
      registers,
    });
    this.dropped = new Counter({
      name: 'shardwarden_gateway_dispatches_dropped_total',
      help: 'Dispatches not forwarded, by type and reason (not_configured; shutting_down, replayed to whoever resumes the session; rejected; buffer_full, refused while the buffer was full and lost with a session that could not be resumed; replay_gap, sequences a resumed replay skipped).',
      labelNames: ['type', 'reason'],
      registers,
    });
    this.overflow = new Counter({
      name: 'shardwarden_gateway_buffer_overflow_total',
      help: 'Dispatches refused while the buffer was full (or behind such a refusal of their shard): left to Discord, which replays them when the shard resumes.',
      registers,
    });
    this.enqueueErrors = new Counter({
      name: 'shardwarden_gateway_enqueue_errors_total',
      help: 'Failed enqueue attempts (retried).',
      registers,
    });
    this.batchSize = new Histogram({
      name: 'shardwarden_gateway_batch_size',
      help: 'Jobs per enqueue batch.',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250],
      registers,
    });
    this.enqueueLatency = new Histogram({
      name: 'shardwarden_gateway_enqueue_latency_seconds',
      help: 'Time to enqueue one batch.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers,
    });
    this.identifyWait = new Histogram({
      name: 'shardwarden_gateway_identify_wait_seconds',
      help: 'Time a shard waited for its identify bucket.',
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.sessionStarts = new Counter({
      name: 'shardwarden_gateway_session_starts_total',
      help: 'Shard sessions started, by kind (identify or resume).',
      labelNames: ['kind'],
      registers,
    });
    this.bufferDepth = new Gauge({
      name: 'shardwarden_gateway_buffer_depth',
      help: 'Dispatches waiting to be enqueued.',
      registers,
    });
    this.batchBodies = new Gauge({
      name: 'shardwarden_gateway_batch_bodies',
      help: '1 while batches of events are written as bodies beside their jobs, 0 while inline.',
      registers,
    });
  }
}
