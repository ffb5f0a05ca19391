// The probes' HTTP server (/healthz, /readyz, /metrics) over real sockets.
import { lookup } from 'node:dns/promises';
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { startHttpServer, type HttpServer } from '../../bot/observability/http-server.js';

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One raw HTTP/1.1 request on a fresh connection, closed after the reply. */
function raw(port: number, request: string, host = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.write(request);
  });
}

const request = (method: string, target: string) =>
  `${method} ${target} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n`;

/** An open connection whose socket has seen the reply to one keep-alive request. */
function keptAlive(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', reject);
    socket.once('data', () => resolve(socket));
    socket.write('GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n');
  });
}

describe('the probes HTTP server', () => {
  const logged: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  const registry = new Registry();
  new Counter({ name: 'probe_test_total', help: 'a metric', registers: [registry] }).inc();
  let ready = true;
  let server: HttpServer;

  beforeAll(async () => {
    server = await startHttpServer(
      '127.0.0.1',
      0,
      registry,
      {
        healthy: () => true,
        ready: () => ready,
        describe: () => {
          if (!ready) throw new Error('secret-ish detail from a check');
          return { shards: 1 };
        },
      },
      log,
    );
  });
  afterAll(() => server.close());

  test('GET answers the probes and the metrics; the query string is ignored', async () => {
    const health = await raw(server.port, request('GET', '/healthz?verbose=1'));
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ ok: true, details: { shards: 1 } });
    const metrics = await raw(server.port, request('GET', '/metrics'));
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toBe(registry.contentType);
    expect(metrics.body).toContain('probe_test_total 1');
  });

  test('HEAD answers the headers of GET and no body', async () => {
    const head = await raw(server.port, request('HEAD', '/healthz'));
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    expect(head.body).toBe('');
  });

  test('an unknown path or method is 404, a target that is no path 400', async () => {
    expect((await raw(server.port, request('GET', '/nope'))).status).toBe(404);
    expect((await raw(server.port, request('POST', '/healthz'))).status).toBe(404);
    const bad = await raw(server.port, request('GET', '//['));
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ error: 'bad request target' });
  });

  test('a throwing check answers a generic 500 and its text goes to the log only', async () => {
    ready = false;
    try {
      const failed = await raw(server.port, request('GET', '/readyz'));
      expect(failed.status).toBe(500);
      expect(failed.body).toBe(JSON.stringify({ error: 'internal' }));
      expect(logged).toContainEqual(
        expect.objectContaining({ err: 'secret-ish detail from a check', path: '/readyz', level: 50 }),
      );
    } finally {
      ready = true;
    }
  });
});

describe('closing the probes HTTP server', () => {
  const log = pino({ level: 'silent' });
  const start = (host = '127.0.0.1') =>
    startHttpServer(host, 0, new Registry(), { healthy: () => true, ready: () => true }, log);

  test('close() resolves while a keep-alive client and a half-sent request hold connections', async () => {
    const server = await start();
    const idle = await keptAlive(server.port);
    const halfSent = connect(server.port, '127.0.0.1');
    await new Promise((resolve) => halfSent.once('connect', resolve));
    halfSent.write('GET /healthz HTTP/1.1\r\nHost: pro');
    const closedBy = (s: Socket) => new Promise((resolve) => s.once('close', resolve));
    const bothClosed = Promise.all([closedBy(idle), closedBy(halfSent)]);
    await server.close();
    await bothClosed;
    await expect(raw(server.port, request('GET', '/healthz'))).rejects.toThrow(/ECONNREFUSED/);
  });

  test('a host name is served on every address it resolves to', async () => {
    const server = await start('localhost');
    try {
      for (const { address } of await lookup('localhost', { all: true }))
        expect((await raw(server.port, request('GET', '/healthz'), address)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
