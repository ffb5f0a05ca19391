// The operator's Prometheus metrics. Per-bot series are ObjectGauges (their text rendered once,
// not per scrape) and are removed when the bot goes away.
import { Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import { ObjectGauge, OperatorRegistry } from './object-gauge.js';

export class OperatorMetrics {
  readonly registry = new OperatorRegistry();
  readonly reconciles = new Counter({
    name: 'shardwarden_operator_reconcile_total',
    help: 'Reconciles by result.',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'shardwarden_operator_reconcile_errors_total',
    help: 'Reconciles that failed and were retried.',
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'shardwarden_operator_reconcile_duration_seconds',
    help: 'Reconcile duration by result.',
    labelNames: ['result'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'shardwarden_operator_workqueue_depth',
    help: 'Bots waiting to be reconciled.',
    registers: [this.registry],
  });
  readonly discordRequests = new Counter({
    name: 'shardwarden_operator_discord_requests_total',
    help: 'GET /gateway/bot calls by HTTP status (error: no answer).',
    labelNames: ['status'],
    registers: [this.registry],
  });
  readonly apiRequests = new Counter({
    name: 'shardwarden_operator_apiserver_requests_total',
    help: 'Requests the operator made to the apiserver, by verb.',
    labelNames: ['verb'],
    registers: [this.registry],
  });
  readonly apiRequestDuration = new Histogram({
    name: 'shardwarden_operator_apiserver_request_duration_seconds',
    help: "The operator's writes to the apiserver, from sent to answered, by verb.",
    labelNames: ['verb'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: 'shardwarden_operator_workqueue_wait_seconds',
    help: 'How long a bot waited in the work queue before its reconcile started.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'shardwarden_operator_leader',
    help: '1 while this replica holds the leader lease.',
    registers: [this.registry],
  });
  readonly botShards = new ObjectGauge({
    name: 'shardwarden_bot_shards',
    help: "Total shards of the bot's plan.",
    labelNames: ['namespace', 'bot'],
    registers: [this.registry],
  });
  readonly botRecommendedShards = new ObjectGauge({
    name: 'shardwarden_bot_recommended_shards',
    help: 'Shards Discord recommends for the bot.',
    labelNames: ['namespace', 'bot'],
    registers: [this.registry],
  });
  readonly botGatewayPods = new ObjectGauge({
    name: 'shardwarden_bot_gateway_pods',
    help: 'Gateway pods the plan wants.',
    labelNames: ['namespace', 'bot'],
    registers: [this.registry],
  });
  readonly botGatewayPodsReady = new ObjectGauge({
    name: 'shardwarden_bot_gateway_pods_ready',
    help: 'Gateway pods Ready.',
    labelNames: ['namespace', 'bot'],
    registers: [this.registry],
  });
  readonly botSessionStartsRemaining = new ObjectGauge({
    name: 'shardwarden_bot_session_starts_remaining',
    help: 'Discord session starts left (session_start_limit.remaining).',
    labelNames: ['namespace', 'bot'],
    registers: [this.registry],
  });
  readonly botGatewayGeneration = new ObjectGauge({
    name: 'shardwarden_bot_gateway_generation',
    help: 'The gateway generation serving (increases with every reshard).',
    labelNames: ['namespace', 'bot'],
    registers: [this.registry],
  });
  readonly botResharding = new ObjectGauge({
    name: 'shardwarden_bot_resharding',
    help: '1 while a reshard waits for session budget or runs a new generation beside the old one, else 0.',
    labelNames: ['namespace', 'bot'],
    registers: [this.registry],
  });
  readonly botWorkerReplicas = new ObjectGauge({
    name: 'shardwarden_bot_worker_replicas',
    help: 'Worker replicas.',
    labelNames: ['namespace', 'bot'],
    registers: [this.registry],
  });

  // Named and labelled as the chart's alerts and dashboards expect ({namespace, name}).
  readonly workerBacklog = new ObjectGauge({
    name: 'shardwarden_operator_worker_backlog',
    help: "Jobs waiting in the bot's queues (waiting + prioritized + due delayed), as the Builtin autoscaler last read them.",
    labelNames: ['namespace', 'name'],
    registers: [this.registry],
  });
  readonly workerDesiredReplicas = new ObjectGauge({
    name: 'shardwarden_operator_worker_desired_replicas',
    help: 'Worker replicas the Builtin autoscaler wants (after the scale-down window).',
    labelNames: ['namespace', 'name'],
    registers: [this.registry],
  });

  private readonly perBot = [
    this.botShards,
    this.botRecommendedShards,
    this.botGatewayPods,
    this.botGatewayPodsReady,
    this.botSessionStartsRemaining,
    this.botWorkerReplicas,
    this.botGatewayGeneration,
    this.botResharding,
  ];

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'shardwarden_operator_' });
  }

  forgetBot(namespace: string, bot: string): void {
    for (const g of this.perBot) g.remove({ namespace, bot });
    this.forgetAutoscaling(namespace, bot);
  }

  forgetAutoscaling(namespace: string, name: string): void {
    this.workerBacklog.remove({ namespace, name });
    this.workerDesiredReplicas.remove({ namespace, name });
  }
}
