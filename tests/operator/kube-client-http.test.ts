// The operator's apiserver client and informers against a small local HTTP server that
// misbehaves as a stalled or failing apiserver or load balancer does: real sockets, answers a
// real apiserver cannot be made to give on demand (a reset mid-answer, a stall, a 410 to a watch).
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../bot/observability/logger.js';
import { ResilientInformer } from '../../operator/controller/informers.js';
import { KubeClient, type ClientTimeouts } from '../../operator/kube/api-client.js';
import { waitUntil } from '../../testenv/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

interface Recorded {
  url: URL;
  closed: boolean;
}

/** A server answering with `handler`, recording every request and whether its connection closed. */
async function serve(handler: Handler): Promise<{ server: Server; url: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const rec: Recorded = { url, closed: false };
    requests.push(rec);
    res.on('close', () => (rec.closed = true));
    handler(req, res, url);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const json = (res: ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const status = (code: number, reason: string, message: string) => ({
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  code,
  reason,
  message,
});
const cm = (name: string, rv: string) => ({ metadata: { namespace: 'ns', name, resourceVersion: rv } });

const log = createLogger('test', 'silent');
const servers: Server[] = [];
const clients: KubeClient[] = [];
const informers: ResilientInformer<ReturnType<typeof cm>>[] = [];

async function setup(handler: Handler, timeouts: Partial<ClientTimeouts> = {}) {
  const s = await serve(handler);
  servers.push(s.server);
  const client = new KubeClient({ server: s.url }, timeouts);
  clients.push(client);
  return { ...s, client };
}

afterEach(async () => {
  for (const inf of informers.splice(0)) await inf.stop();
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

describe('requests', () => {
  test('a connection reset after the answer began fails that request; it is not sent again', async () => {
    const { client, requests } = await setup((_req, res, url) => {
      if (url.pathname !== '/cut') return json(res, 200, { ok: true });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":');
      // Once the client has the headers and the first bytes, the connection is reset.
      setImmediate(() => res.socket?.resetAndDestroy());
    });
    // A first request leaves a keep-alive connection that the next one reuses.
    expect(await client.get('/first')).toEqual({ ok: true });
    await expect(client.get('/cut')).rejects.toThrow();
    // A request after it: had the cut one been sent again, it would have arrived before this one.
    expect(await client.get('/after')).toEqual({ ok: true });
    expect(requests.map((r) => r.url.pathname)).toEqual(['/first', '/cut', '/after']);
  });

  test('a request the server never answers fails after the configured timeout, and its connection closes', async () => {
    const { client, requests } = await setup(() => undefined, { requestMs: 300 });
    const started = Date.now();
    await expect(client.get('/stalled')).rejects.toThrow('GET /stalled: no answer within 0.3 s');
    expect(Date.now() - started).toBeLessThan(30_000);
    await waitUntil('the stalled request is closed', async () => requests[0]?.closed === true);
  });

  test("the caller's signal still ends a request before the timeout", async () => {
    const { client } = await setup(() => undefined, { requestMs: 60_000 });
    const caller = new AbortController();
    const pending = client.get('/stalled', caller.signal);
    caller.abort();
    await expect(pending).rejects.toThrow(/abort/i);
  });

  test('a 2xx answer that is not JSON is an error that does not quote it', async () => {
    const { client } = await setup((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>Authorization: Bearer abc</html>');
    });
    const err = (await client.get('/page').catch((e: unknown) => e)) as Error;
    expect(err.message).toBe('GET /page: HTTP 200 with a body that is not JSON');
    expect(err.message).not.toContain('Bearer');
  });

  test('a list comes in pages of 500; a page whose snapshot expired restarts paging once, then lists in one piece', async () => {
    let expiredTokens = 0;
    const { client, requests } = await setup((_req, res, url) => {
      const cont = url.searchParams.get('continue');
      // /expiring: every continue token has expired; /expires-once: only the first one.
      const expired =
        url.pathname === '/expiring' || (url.pathname === '/expires-once' && expiredTokens === 0);
      if (cont && url.pathname !== '/paged' && expired) {
        expiredTokens++;
        return json(res, 410, status(410, 'Expired', 'The provided continue parameter is too old'));
      }
      if (url.pathname === '/expiring' && !url.searchParams.get('limit'))
        return json(res, 200, { metadata: { resourceVersion: '9' }, items: [cm('a', '1'), cm('b', '2')] });
      if (!cont)
        return json(res, 200, { metadata: { resourceVersion: '7', continue: 'p2' }, items: [cm('a', '1')] });
      return json(res, 200, { metadata: { resourceVersion: '7' }, items: [cm('b', '2')] });
    });
    const queries = () => requests.splice(0).map((r) => Object.fromEntries(r.url.searchParams));
    const whole = { metadata: { resourceVersion: '7' }, items: [cm('a', '1'), cm('b', '2')] };

    expect(await client.list('/paged', { labelSelector: 'app=x' })).toEqual(whole);
    expect(queries()).toEqual([
      { labelSelector: 'app=x', limit: '500' },
      { labelSelector: 'app=x', limit: '500', continue: 'p2' },
    ]);

    // The first page is not counted twice: the pages before the expiry are dropped.
    expect(await client.list('/expires-once')).toEqual(whole);
    expect(queries()).toEqual([
      { limit: '500' },
      { limit: '500', continue: 'p2' },
      { limit: '500' },
      { limit: '500', continue: 'p2' },
    ]);

    expect(await client.list('/expiring')).toEqual({
      metadata: { resourceVersion: '9' },
      items: [cm('a', '1'), cm('b', '2')],
    });
    expect(queries()).toEqual([
      { limit: '500' },
      { limit: '500', continue: 'p2' },
      { limit: '500' },
      { limit: '500', continue: 'p2' },
      {},
    ]);
  });

  test("a list's transform shapes each page as it arrives, before the next page is asked for", async () => {
    const { client, requests } = await setup((_req, res, url) =>
      url.searchParams.get('continue')
        ? json(res, 200, { metadata: { resourceVersion: '7' }, items: [cm('b', '2')] })
        : json(res, 200, { metadata: { resourceVersion: '7', continue: 'p2' }, items: [cm('a', '1')] }),
    );
    /** Item name → how many requests had been sent when it was transformed. */
    const transformedAfter: Record<string, number> = {};
    const list = await client.list<ReturnType<typeof cm>>('/paged', {
      transform: (o) => {
        transformedAfter[o.metadata.name] = requests.length;
        return { metadata: { ...o.metadata, namespace: 'slim' } };
      },
    });
    expect(transformedAfter).toEqual({ a: 1, b: 2 });
    expect(list.items.map((o) => o.metadata.namespace)).toEqual(['slim', 'slim']);
  });
});

describe('bearer tokens', () => {
  test('a token file wins over an inline token, and is read again when rewritten', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'token-test-'));
    try {
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, 'from-file\n');
      const { server, requests } = await serve((req, res) =>
        json(res, 200, { auth: req.headers.authorization }),
      );
      servers.push(server);
      const client = new KubeClient({
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        token: 'inline',
        tokenFile,
      });
      clients.push(client);
      expect(await client.get('/')).toEqual({ auth: 'Bearer from-file' });
      // Rewritten in place within the same clock tick: the size tells it changed.
      writeFileSync(tokenFile, 'rotated-longer\n');
      expect(await client.get('/')).toEqual({ auth: 'Bearer rotated-longer' });
      expect(requests).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('watches', () => {
  const event = (type: string, obj: unknown) => JSON.stringify({ type, object: obj }) + '\n';

  test('a watch whose answer does not begin within the headers timeout fails', async () => {
    const { client } = await setup(() => undefined, { watchHeadersMs: 300 });
    await expect(
      client.watch('/stalled', { resourceVersion: '1' }, () => undefined, new AbortController().signal),
    ).rejects.toThrow('watch /stalled: no answer within 0.3 s');
  });

  test('once it began, the headers timeout no longer applies; silence for the idle time ends it quietly', async () => {
    let sendSecond = () => undefined as void;
    const { client, requests } = await setup(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(event('ADDED', cm('a', '2')));
        sendSecond = () => void res.write(event('MODIFIED', cm('a', '3')));
      },
      { watchHeadersMs: 200, watchIdleMs: 5_000 },
    );
    const seen: string[] = [];
    const firstSeen = new Promise<void>((resolve) => {
      const done = client.watch<ReturnType<typeof cm>>(
        '/w',
        { resourceVersion: '1' },
        (e) => {
          seen.push(`${e.type} ${e.object.metadata.resourceVersion}`);
          if (seen.length === 1) resolve();
        },
        new AbortController().signal,
      );
      void done.then(() => seen.push('ended'));
    });
    await firstSeen;
    // A negative check, so a wait: well past the headers timeout, nothing has aborted the watch
    // (its timer stops once the headers came), and it still delivers.
    await new Promise((r) => setTimeout(r, 400));
    sendSecond();
    await waitUntil('the watch ended after going silent', async () => seen.includes('ended'));
    expect(seen).toEqual(['ADDED 2', 'MODIFIED 3', 'ended']);
    await waitUntil('its connection is closed', async () => requests[0]?.closed === true);
  });
});

describe('informers', () => {
  const informer = (client: KubeClient, onChange: (kind: string, obj: ReturnType<typeof cm>) => void) => {
    const inf = new ResilientInformer(client, '/api/v1/configmaps', onChange, log);
    informers.push(inf);
    return inf;
  };
  const lists = (requests: Recorded[]) => requests.filter((r) => !r.url.searchParams.has('watch'));
  const watches = (requests: Recorded[]) => requests.filter((r) => r.url.searchParams.has('watch'));

  test('a watch refused with 410 Gone lists again', async () => {
    const { client, requests } = await setup((_req, res, url) => {
      if (!url.searchParams.has('watch'))
        return json(res, 200, {
          metadata: { resourceVersion: String(5 + lists(requests).length) },
          items: [],
        });
      if (url.searchParams.get('resourceVersion') === '6')
        return json(res, 410, status(410, 'Expired', 'too old resource version: 6'));
      res.writeHead(200, { 'content-type': 'application/json' }); // then stays open
    });
    await informer(client, () => undefined).start();
    await waitUntil('it listed again and watches from the new list', async () =>
      watches(requests).some((w) => w.url.searchParams.get('resourceVersion') === '7'),
    );
    expect(lists(requests)).toHaveLength(2);
  });

  test('an event whose handler threw is handed over again', async () => {
    const { client, requests } = await setup((_req, res, url) => {
      if (!url.searchParams.has('watch'))
        return json(res, 200, { metadata: { resourceVersion: '1' }, items: [] });
      res.writeHead(200, { 'content-type': 'application/json' });
      if (watches(requests).length <= 2)
        res.end(`{"type":"ADDED","object":${JSON.stringify(cm('a', '2'))}}\n`);
    });
    const handled: string[] = [];
    let failures = 0;
    await informer(client, (kind, obj) => {
      if (failures++ === 0) throw new Error('handler failed');
      handled.push(`${kind} ${obj.metadata.name}`);
    }).start();
    await waitUntil('the event reached the handler after it failed once', async () => handled.length > 0);
    expect(handled).toEqual(['add a']);
    // Watched from the list's version both times: the failed event did not move it.
    expect(
      watches(requests)
        .slice(0, 2)
        .map((w) => w.url.searchParams.get('resourceVersion')),
    ).toEqual(['1', '1']);
  });

  test('a listed object whose handler threw is handed over again by the next list', async () => {
    const { client, requests } = await setup((_req, res, url) => {
      if (!url.searchParams.has('watch'))
        return json(res, 200, { metadata: { resourceVersion: '1' }, items: [cm('a', '1'), cm('b', '1')] });
      res.writeHead(200, { 'content-type': 'application/json' }); // then stays open
    });
    const handled: string[] = [];
    let failures = 0;
    await informer(client, (kind, obj) => {
      if (obj.metadata.name === 'a' && failures++ === 0) throw new Error('handler failed');
      handled.push(`${kind} ${obj.metadata.name}`);
    }).start();
    await waitUntil('both objects reached the handler', async () => handled.includes('add a'));
    expect(handled.filter((h) => h === 'add a')).toHaveLength(1);
    expect(handled).toContain('add b');
    expect(lists(requests)).toHaveLength(2);
  });

  test('stop() ends a list in flight', async () => {
    const { client, requests } = await setup(() => undefined);
    const inf = informer(client, () => undefined);
    void inf.start();
    await waitUntil('the list was sent', async () => requests.length === 1);
    await inf.stop();
    await waitUntil('its connection is closed', async () => requests[0]?.closed === true);
  });
});
