// An HTTP proxy in front of an RPC node whose behaviour tests switch at run time, to make an
// endpoint rate-limit, fail or hang (failover tests), and to count the requests that reach it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RpcProxyBehaviour = 'pass' | '429' | '500' | 'hang';

export interface RpcProxy {
  readonly url: string;
  behaviour: RpcProxyBehaviour;
  /** HTTP requests seen (a JSON-RPC batch is one), whatever the behaviour. */
  readonly requests: number;
  /** JSON-RPC calls seen by method (batch items counted one by one). */
  readonly methods: Readonly<Record<string, number>>;
  /** Headers of the last request (to check what a client sends, e.g. Authorization). */
  readonly lastHeaders: Readonly<Record<string, string | string[] | undefined>>;
  resetCounters(): void;
  stop(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startRpcProxy(
  targetUrl: string,
  behaviour: RpcProxyBehaviour = 'pass',
): Promise<RpcProxy> {
  let requests = 0;
  let methods: Record<string, number> = {};
  let lastHeaders: Record<string, string | string[] | undefined> = {};
  const hanging = new Set<ServerResponse>();

  const count = (body: Buffer) => {
    requests += 1;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { method?: string } | { method?: string }[];
      for (const call of Array.isArray(parsed) ? parsed : [parsed]) {
        const method = call.method ?? '(none)';
        methods[method] = (methods[method] ?? 0) + 1;
      }
    } catch {
      methods['(unparsable)'] = (methods['(unparsable)'] ?? 0) + 1;
    }
  };

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      lastHeaders = { ...req.headers };
      count(body);
      switch (proxy.behaviour) {
        case '429':
          res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' }).end('Too Many Requests');
          return;
        case '500':
          res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
          return;
        case 'hang':
          // Never answers; the client's timeout (or stop()) ends it.
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
          return;
        case 'pass': {
          try {
            const upstream = await fetch(targetUrl, {
              method: 'POST',
              headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
              body,
            });
            const text = await upstream.text();
            res
              .writeHead(upstream.status, {
                'content-type': upstream.headers.get('content-type') ?? 'application/json',
              })
              .end(text);
          } catch (err) {
            res.writeHead(502, { 'content-type': 'text/plain' }).end(`proxy: ${(err as Error).message}`);
          }
        }
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const proxy: RpcProxy = {
    url: `http://127.0.0.1:${port}`,
    behaviour,
    get requests() {
      return requests;
    },
    get methods() {
      return methods;
    },
    get lastHeaders() {
      return lastHeaders;
    },
    resetCounters() {
      requests = 0;
      methods = {};
    },
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
