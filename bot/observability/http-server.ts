// /healthz, /readyz and /metrics for every Shardwarden process (operator, gateway, worker).
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Registry } from 'prom-client';

export interface HealthChecks {
  /** Alive: false makes /healthz answer 503 (the kubelet restarts the container). */
  healthy: () => boolean | Promise<boolean>;
  /** Ready: false makes /readyz answer 503 (no traffic, not counted as available). */
  ready: () => boolean | Promise<boolean>;
  /** Short text for humans reading the probes. */
  describe?: () => Record<string, unknown>;
}

export async function startHttpServer(
  host: string,
  port: number,
  registry: Registry,
  checks: HealthChecks,
): Promise<{ app: FastifyInstance; port: number }> {
  const app = Fastify({ logger: false });
  const probe =
    (check: () => boolean | Promise<boolean>, key: 'ok' | 'ready') =>
    async (_req: unknown, reply: FastifyReply) => {
      const ok = await check();
      return reply.code(ok ? 200 : 503).send({ [key]: ok, details: checks.describe?.() ?? {} });
    };
  app.get('/healthz', probe(checks.healthy, 'ok'));
  app.get('/readyz', probe(checks.ready, 'ready'));
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
  await app.listen({ host, port });
  const address = app.server.address();
  return { app, port: typeof address === 'object' && address ? address.port : port };
}
