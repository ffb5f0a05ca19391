// /healthz, /readyz and /metrics for every Shardwarden process (operator, gateway, worker).
// Plain node:http: three fixed routes need no framework, and a framework costs every process
// that serves them memory (fastify: 6 MB of anonymous memory in the gateway pod's primary,
// docs/benchmarks.md, "The lean Ear").
import { lookup } from 'node:dns/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
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
  /** Stops listening; resolves within CLOSE_GRACE_MS even while clients hold connections. */
  close: () => Promise<void>;
}

/** How long an idle keep-alive connection is kept (Node's default is 5 s). */
const KEEP_ALIVE_MS = 65_000;

/**
 * How long close() lets requests in flight finish before it drops every connection: a probe or
 * scrape takes milliseconds, and the process closing its server exits next (inside the pod's
 * 30 s grace period), so a keep-alive client or a half-sent request must not hold it longer.
 */
export const CLOSE_GRACE_MS = 2_000;

type Answer = { status: number; contentType: string; body: string };

const JSON_TYPE = 'application/json; charset=utf-8';
const jsonAnswer = (status: number, body: object): Answer => ({
  status,
  contentType: JSON_TYPE,
  body: JSON.stringify(body),
});

/** What a GET of `path` answers; undefined for any other route. */
async function answer(path: string, registry: Registry, checks: HealthChecks): Promise<Answer | undefined> {
  const probe = async (check: () => boolean | Promise<boolean>, key: 'ok' | 'ready'): Promise<Answer> => {
    const ok = await check();
    return jsonAnswer(ok ? 200 : 503, { [key]: ok, details: checks.describe?.() ?? {} });
  };
  if (path === '/healthz') return probe(checks.healthy, 'ok');
  if (path === '/readyz') return probe(checks.ready, 'ready');
  if (path === '/metrics')
    return { status: 200, contentType: registry.contentType, body: await registry.metrics() };
  return undefined;
}

/** The path of a request target, or undefined when it is not one (e.g. `//[`). */
function pathOf(target: string | undefined): string | undefined {
  try {
    return new URL(target ?? '/', 'http://probe').pathname;
  } catch {
    return undefined;
  }
}

async function route(req: IncomingMessage, registry: Registry, checks: HealthChecks): Promise<Answer> {
  const path = pathOf(req.url);
  if (path === undefined) return jsonAnswer(400, { error: 'bad request target' });
  const found =
    req.method === 'GET' || req.method === 'HEAD' ? await answer(path, registry, checks) : undefined;
  return found ?? jsonAnswer(404, { error: `no route ${req.method ?? ''} ${path}` });
}

/**
 * Every address `host` names: a name like `localhost` may resolve to 127.0.0.1 and ::1, and
 * `listen` would bind only the first.
 */
async function addressesOf(host: string): Promise<string[]> {
  const found = await lookup(host, { all: true });
  return [...new Set(found.map((a) => a.address))];
}

function listen(server: Server, port: number, address: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startHttpServer(
  host: string,
  port: number,
  registry: Registry,
  checks: HealthChecks,
  log: Logger,
): Promise<HttpServer> {
  let closing = false;
  const respond = (req: IncomingMessage, res: ServerResponse, a: Answer) => {
    res.writeHead(a.status, {
      'content-type': a.contentType,
      'content-length': Buffer.byteLength(a.body),
      // Once closing, no connection is kept for another request.
      ...(closing ? { connection: 'close' } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    route(req, registry, checks).then(
      (a) => respond(req, res, a),
      (err: unknown) => {
        // The error's text may say more than a scraper should read: it goes to the log only.
        log.error({ err: (err as Error).message, path: req.url }, 'HTTP request failed');
        if (res.headersSent) res.end();
        else respond(req, res, jsonAnswer(500, { error: 'internal' }));
      },
    );
  };
  const servers: Server[] = [];
  let boundPort = port;
  for (const address of await addressesOf(host)) {
    // Idle connections outlive the clients' own keep-alive (undici's 4 s, Prometheus' scrapes):
    // with Node's 5 s a loaded client could reuse a socket the server was closing that moment
    // ("other side closed"). Shutdown closes idle ones at once, so this holds nothing up.
    const server = createServer({ keepAliveTimeout: KEEP_ALIVE_MS }, handle);
    try {
      // The first address decides the port (port 0: any free one); the others take the same.
      await listen(server, boundPort, address);
    } catch (err) {
      // As fastify did: a further address the machine cannot bind (no IPv6) is skipped.
      const code = (err as NodeJS.ErrnoException).code;
      if (servers.length > 0 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) {
        log.warn({ address, code }, 'HTTP server not listening on this address');
        continue;
      }
      servers.forEach((s) => s.close());
      throw err;
    }
    boundPort = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  const closeOne = (server: Server) =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
    });
  return {
    port: boundPort,
    close: async () => {
      closing = true;
      await Promise.all(servers.map(closeOne));
    },
  };
}
