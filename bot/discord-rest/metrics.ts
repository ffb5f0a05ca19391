// Discord REST metrics. Labels carry route templates only (ids and tokens replaced), so the
// series stay few and no secret reaches Prometheus.
import { Counter, Histogram, type Registry } from 'prom-client';

export class DiscordRestMetrics {
  readonly requests: Counter<'route' | 'status'>;
  readonly rateLimited: Counter<'route' | 'scope'>;
  readonly invalid: Counter;
  readonly limiterWait: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    // Several REST clients of one process may share a registry: reuse what is registered.
    const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
    this.requests =
      existing('shardwarden_discord_rest_requests_total') ??
      new Counter({
        name: 'shardwarden_discord_rest_requests_total',
        help: 'Discord REST responses, by route template and HTTP status (0: no response).',
        labelNames: ['route', 'status'],
        registers,
      });
    this.rateLimited =
      existing('shardwarden_discord_rest_rate_limited_total') ??
      new Counter({
        name: 'shardwarden_discord_rest_rate_limited_total',
        help: '429 responses received, by route template and scope (global, user, shared).',
        labelNames: ['route', 'scope'],
        registers,
      });
    this.invalid =
      existing('shardwarden_discord_rest_invalid_requests_total') ??
      new Counter({
        name: 'shardwarden_discord_rest_invalid_requests_total',
        help: 'Responses Discord counts as invalid (401, 403, 429 except scope shared); 10,000 in 10 minutes ban the IP.',
        registers,
      });
    this.limiterWait =
      existing('shardwarden_discord_rest_limiter_wait_seconds') ??
      new Histogram({
        name: 'shardwarden_discord_rest_limiter_wait_seconds',
        help: 'Time a request waited for the shared (Redis) rate limiter before it was sent.',
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers,
      });
  }
}
