// /healthz, /readyz and /metrics for every Shardwarden process (operator, gateway, worker).
// Plain node:http: three fixed routes need no framework, and a framework costs every process
// that serves them memory (fastify: 6 MB of anonymous memory in the gateway pod's primary,
// docs/benchmarks.md, "The lean Ear").
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthChecks {
  /** Alive: false makes /healthz answer 503 (the kubelet restarts the container). */
  healthy: () => boolean | Promise<boolean>;
  /** Ready: false makes /readyz answer 503 (no traffic, not counted as available). */
  ready: () => boolean | Promise<boolean>;
  /** Short text for humans reading the probes. */
  describe?: () => Record<string, unknown>;
}

export interface HttpServer {
  port: number;
  close: () => Promise<void>;
}

type Answer = { status: number; contentType: string; body: string };

/** What a GET of `path` answers; undefined for any other route. */
async function answer(path: string, registry: Registry, checks: HealthChecks): Promise<Answer | undefined> {
  const probe = async (check: () => boolean | Promise<boolean>, key: 'ok' | 'ready'): Promise<Answer> => {
    const ok = await check();
    const body = JSON.stringify({ [key]: ok, details: checks.describe?.() ?? {} });
    return { status: ok ? 200 : 503, contentType: 'application/json; charset=utf-8', body };
  };
  if (path === '/healthz') return probe(checks.healthy, 'ok');
  if (path === '/readyz') return probe(checks.ready, 'ready');
  if (path === '/metrics')
    return { status: 200, contentType: registry.contentType, body: await registry.metrics() };
  return undefined;
}

export async function startHttpServer(
  host: string,
  port: number,
  registry: Registry,
  checks: HealthChecks,
): Promise<HttpServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://probe').pathname;
    const found =
      req.method === 'GET' || req.method === 'HEAD' ? await answer(path, registry, checks) : undefined;
    const a = found ?? {
      status: 404,
      contentType: 'application/json; charset=utf-8',
      body: JSON.stringify({ error: `no route ${req.method ?? ''} ${path}` }),
    };
    res.writeHead(a.status, { 'content-type': a.contentType, 'content-length': Buffer.byteLength(a.body) });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: err.message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Probes and scrapes hold keep-alive connections open: close drops the idle ones.
        server.closeIdleConnections();
      }),
  };
}
