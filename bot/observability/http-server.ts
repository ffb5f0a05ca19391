// /healthz, /readyz and /metrics for every Shardwarden process (operator, gateway, worker).
import Fastify, { type FastifyInstance } from 'fastify';
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
  app.get('/healthz', async (_req, reply) =>
    reply
      .code((await checks.healthy()) ? 200 : 503)
      .send({ ok: await checks.healthy(), ...checks.describe?.() }),
  );
  app.get('/readyz', async (_req, reply) =>
    reply
      .code((await checks.ready()) ? 200 : 503)
      .send({ ready: await checks.ready(), ...checks.describe?.() }),
  );
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
  await app.listen({ host, port });
  const address = app.server.address();
  return { app, port: typeof address === 'object' && address ? address.port : port };
}
