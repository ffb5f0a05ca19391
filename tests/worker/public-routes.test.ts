// The public wallet-verification routes under abuse: anyone on the internet can call them, so a
// flood must be limited (429) and must not starve the interactions that share the worker's
// database pool; the page carries security headers; expired nonces are purged.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { createDatabase, type Database } from '../../bot/database/index.js';
import {
  startAnvil,
  startPostgres,
  startRedis,
  waitUntil,
  type AnvilNode,
  type PostgresServer,
  type RedisServer,
} from '../../testenv/index.js';
import { createAppDatabase } from '../database/app-database.js';
import type { GatewayProcess } from '../gateway/harness.js';
import { slashCommand, startOneShardGateway, startWorker, workerEnv, type WorkerProcess } from './harness.js';

describe('public verification routes', () => {
  let sim: DiscordSimulator;
  let redis: RedisServer;
  let postgres: PostgresServer;
  let anvil: AnvilNode;
  let gateway: GatewayProcess;
  let worker: WorkerProcess;
  let db: Database;
  let guildId: string;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

  beforeAll(async () => {
    sim = await DiscordSimulator.start({ seed: 12, guilds: 1, guildSize: { members: 10 } });
    [redis, postgres, anvil] = await Promise.all([startRedis(), startPostgres(), startAnvil()]);
    const databaseUrl = await createAppDatabase(postgres);
    guildId = [...sim.world.guilds.keys()][0]!;
    gateway = await startOneShardGateway(sim, redis.url);
    worker = await startWorker(
      await workerEnv(sim, redis.url, {
        DATABASE_URL: databaseUrl,
        // /verify needs the chain configured, not reachable: it reads nothing on chain.
        CHAIN_RPC_URLS: anvil.url,
        SHARDWARDEN_NONCE_PURGE_INTERVAL_SECONDS: '10',
      }),
    );
    db = createDatabase({ url: databaseUrl });
  });

  afterAll(async () => {
    agent.destroy();
    await db?.close();
    await worker?.proc.stop();
    await gateway?.proc.stop();
    await sim?.stop();
    await Promise.all([redis?.close(), postgres?.close(), anvil?.stop()]);
  });

  /** A GET from a given loopback source address (each one is a different client to the worker). */
  function get(
    path: string,
    from: string,
    accept = 'application/json',
    extra: http.OutgoingHttpHeaders = {},
  ) {
    return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const url = new URL(path, worker.publicUrl);
        const req = http.request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            localAddress: from,
            agent,
            headers: { accept, ...extra },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          },
        );
        req.on('error', reject);
        req.end();
      },
    );
  }

  const member = (n: number) => String(BigInt(guildId) + BigInt(n));
  async function verifyLink(userId: string) {
    const { firstResponseMs, text } = await slashCommand(sim, { guildId, userId, command: 'verify' });
    const path = /http:\/\/\S+(\/verify\/\d+\/[0-9a-f]{32})/.exec(text)?.[1];
    return { firstResponseMs, text, path };
  }
  const randomNoncePath = () => `/verify/${guildId}/${randomBytes(16).toString('hex')}`;

  test('the page carries security headers; its script runs under the CSP nonce', async () => {
    const { path } = await verifyLink(member(1));
    expect(path).toBeDefined();
    const page = await get(path!, '127.0.0.1', 'text/html');
    expect(page.status).toBe(200);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(page.body).toContain(`<script nonce="${nonce}">`);
    expect(page.headers).toMatchObject({
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    });
    // Errors too (a frame of an error page is still a frame).
    const unknown = await get(randomNoncePath(), '127.0.0.1');
    expect(unknown.status).toBe(404);
    expect(unknown.headers['x-frame-options']).toBe('DENY');
  });

  test('a flood of random nonces gets 429s and does not delay interaction replies', async () => {
    // 6 client addresses (each reaches its limit after 30 requests, even on a slow machine), 16
    // requests in flight at any time, until the interactions are done.
    const sources = Array.from({ length: 6 }, (_, i) => `127.0.0.${i + 2}`);
    const statuses = new Map<number, number>();
    let flooding = true;
    let sent = 0;
    const flooder = async () => {
      while (flooding) {
        const from = sources[sent++ % sources.length]!;
        const { status } = await get(randomNoncePath(), from);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    };
    const flood = Promise.all(Array.from({ length: 16 }, flooder));
    try {
      await waitUntil('the flood to be rate limited', async () => (statuses.get(429) ?? 0) > 0, {
        timeoutMs: 60_000,
      });
      for (let n = 2; n <= 7; n++) {
        const { firstResponseMs, text, path } = await verifyLink(member(n));
        expect({ n, firstResponseMs: firstResponseMs < 3000 }).toEqual({ n, firstResponseMs: true });
        expect({ n, text }).toEqual({ n, text: expect.stringContaining('/verify/') });
        expect(path).toBeDefined();
      }
    } finally {
      flooding = false;
      await flood;
    }
    // Only the rate limit, "unknown" and "busy" answers: nothing failed.
    expect([...statuses.keys()].filter((s) => ![404, 429, 503].includes(s))).toEqual([]);
    expect(statuses.get(429)).toBeGreaterThan(0);
    // The member's own link still opens: the flood used other clients' budgets.
    const { path } = await verifyLink(member(8));
    expect((await get(path!, '127.0.0.1')).status).toBe(200);
  });

  test('one nonce is limited across client addresses', async () => {
    const path = randomNoncePath();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await get(path, `127.0.1.${i + 2}`)).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(404));
    expect(statuses.slice(10)).toEqual([429, 429]);
  });

  test('behind a trusted (private-range) proxy, each forwarded client has its own budget', async () => {
    const via = (client: string) =>
      get(randomNoncePath(), '127.0.2.1', 'application/json', { 'x-forwarded-for': client });
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) statuses.push((await via('203.0.113.7')).status);
    expect(statuses.slice(0, 30)).toEqual(Array(30).fill(404));
    expect(statuses[30]).toBe(429);
    expect((await via('203.0.113.8')).status).toBe(404);
    // A client cannot escape its budget by forging the header: the proxy appends the real one.
    expect((await via('198.51.100.1, 203.0.113.7')).status).toBe(429);
  });

  test('expired nonces are purged; fresh ones and recently expired ones stay', async () => {
    const hour = 3_600_000;
    const rows = {
      old: { nonce: randomBytes(16).toString('hex'), expiresAt: new Date(Date.now() - 48 * hour) },
      recent: { nonce: randomBytes(16).toString('hex'), expiresAt: new Date(Date.now() - 60_000) },
      fresh: { nonce: randomBytes(16).toString('hex'), expiresAt: new Date(Date.now() + hour) },
    };
    await db.withCommunity(guildId, (tx) =>
      tx.verificationNonce.createMany({
        data: Object.values(rows).map((r) => ({
          ...r,
          communityId: guildId,
          userId: member(9),
          message: 'm',
        })),
      }),
    );
    const left = async () =>
      (
        await db.withCommunity(guildId, (tx) =>
          tx.verificationNonce.findMany({
            where: { nonce: { in: Object.values(rows).map((r) => r.nonce) } },
          }),
        )
      ).map((r) => r.nonce);
    await waitUntil('the expired nonce to be purged', async () => !(await left()).includes(rows.old.nonce), {
      timeoutMs: 90_000,
      intervalMs: 1_000,
    });
    expect((await left()).sort()).toEqual([rows.recent.nonce, rows.fresh.nonce].sort());
  });
});
