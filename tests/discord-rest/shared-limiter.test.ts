// The Redis-shared Discord REST limiter against the simulator: real Redis, real @discordjs/rest,
// several clients (separate Redis connections) or worker processes (dist/, `make build`).
import type { REST } from '@discordjs/rest';
import { Routes } from 'discord.js';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { roleChanges, runRestWorkers } from '../../benchmarks/rest-limiter/run-workers.js';
import { longestStall } from '../../benchmarks/rest-limiter/stall.js';
import { createDiscordRest } from '../../bot/discord-rest/index.js';
import { createLogger } from '../../bot/observability/logger.js';
import type { BotRef } from '../../bot/queues/queue-names.js';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';

const ROLE_ROUTE = 'PUT /guilds/:guild_id/members/:user_id/roles/:role_id';

/**
 * The limiter promises no 429 while arrivals are delayed by less than half its margin apart
 * (the other half absorbs late claims; docs/discord-rest.md, "Why the margin"). The simulator
 * runs in this process and stamps a request when its handler runs, so a stall of the sender
 * (between its claim and its write) and one of this process (before the stamp) both delay it:
 * `delayMs` is the most they can add up to. On a machine loaded enough to stall longer, a few
 * requests may land in Discord's next second: then each 429 must have been waited out and
 * retried, every request landed once, and far fewer refused than without a shared budget (a
 * third or more of these runs' requests would be: every sender alone sends a full second's
 * budget at once).
 */
function expectWithinBudget(sim: DiscordSimulator, delayMs: number, marginMs: number, requests: number) {
  const calls = sim.recorder.restCalls.filter((c) => c.route === ROLE_ROUTE);
  const landed = calls.filter((c) => c.status === 204).map((c) => c.path);
  expect(new Set(landed).size).toBe(requests);
  expect(landed).toHaveLength(requests);
  const { rest429 } = sim.recorder.counters;
  expect(calls.length - landed.length).toBe(rest429);
  // The simulator records each 429 it gave as a violation too: nothing else may be there.
  expect(sim.recorder.violations.map((v) => v.kind)).toEqual(Array(rest429).fill('rest-rate-limit'));
  if (delayMs < marginMs / 2) expect({ delayMs, rest429 }).toEqual({ delayMs, rest429: 0 });
  else expect(rest429).toBeLessThan(requests / 4);
}

describe('Discord REST through the shared limiter', () => {
  let server: RedisServer;
  let sim: DiscordSimulator;
  let guilds: string[];
  const connections: Redis[] = [];
  let botSeq = 0;
  let botName: string;

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(() => server.close());
  beforeEach(async () => {
    botName = `bot${++botSeq}`;
    sim = await DiscordSimulator.start({
      seed: 3,
      guilds: 6,
      guildSize: { members: 10, channels: 1, roles: 3 },
      rest: { globalPerSecond: 20 },
    });
    guilds = [...sim.world.guilds.keys()];
  });
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((c) => c.quit()));
    await sim.stop();
  });

  /** One client as a worker process would have it: its own Redis connection and registry. */
  function client(
    globalPerSecond = 20,
    globalMarginMs?: number,
    who: { bot?: BotRef; applicationId?: string } = {},
  ): { rest: REST; registry: Registry } {
    const redis = new Redis(server.url);
    connections.push(redis);
    const registry = new Registry();
    const rest = createDiscordRest({
      bot: who.bot ?? { namespace: 'default', name: botName },
      ...(who.applicationId ? { applicationId: who.applicationId } : {}),
      token: sim.token,
      apiUrl: sim.apiUrl,
      redis,
      globalPerSecond,
      globalMarginMs,
      registry,
      logger: createLogger('discord-rest', 'silent'),
    });
    return { rest, registry };
  }

  const roleCalls = () => sim.recorder.restCalls.filter((c) => c.route === ROLE_ROUTE);
  const putRole = (rest: REST, [g, u, r]: [string, string, string]) =>
    rest.put(Routes.guildMemberRole(g, u, r));
  async function metric(registry: Registry, name: string) {
    return (await registry.getSingleMetric(name)!.get()).values;
  }

  test('4 worker processes share one global budget: every role lands once, no 429 while delays stay within the margin', async () => {
    const changes = roleChanges(sim, guilds, 120);
    // Worker w gets changes w, w+4, ...: every guild's bucket is spent by two processes.
    const lists = [0, 1, 2, 3].map((w) => changes.filter((_, i) => i % 4 === w));
    // The simulator runs in this process: on a loaded machine its event loop stamps arrivals
    // late and unevenly, as a network would delay them; a wider margin covers that here.
    const [{ reports }, stallMs] = await longestStall(() =>
      runRestWorkers(
        {
          redisUrl: server.url,
          apiUrl: sim.apiUrl,
          token: sim.token,
          botName,
          globalPerSecond: 20,
          globalMarginMs: 250,
        },
        lists,
      ),
    );
    expect(reports.map((r) => [r.done, r.failed])).toEqual(lists.map((l) => [l.length, 0]));
    // Each change went out once (again only after a 429, if any), and the simulator applied all.
    // A worker's stall before its write, then one of this process before the stamp.
    const delayMs = stallMs + Math.max(...reports.map((r) => r.longestStallMs));
    expectWithinBudget(sim, delayMs, 250, changes.length);
    expect(reports.reduce((n, r) => n + r.rateLimited, 0)).toBe(sim.recorder.counters.rest429);
    for (const [g, u, r] of changes) expect(sim.world.member(sim.world.guild(g)!, u)!.roles).toContain(r);
  });

  test('two bots of one Discord application share its budget (one token in two namespaces); bots of two applications do not', async () => {
    // Issue 15 item 10: Discord counts the global limit per bot user, so bots `a/relay` and
    // `b/courier` on one token must together stay under it. Each alone would send 20/s.
    const changes = roleChanges(sim, guilds, 60);
    const shared = [
      client(20, 250, { bot: { namespace: 'a', name: 'relay' }, applicationId: sim.applicationId }),
      client(20, 250, { bot: { namespace: 'b', name: 'courier' }, applicationId: sim.applicationId }),
    ];
    const [, stallMs] = await longestStall(() =>
      Promise.all(
        shared.map(({ rest }, w) =>
          Promise.all(changes.filter((_, i) => i % 2 === w).map((c) => putRole(rest, c))),
        ),
      ),
    );
    // Sender and simulator are this process: two of its stalls may delay one request.
    expectWithinBudget(sim, 2 * stallMs, 250, changes.length);
    // Both counted under the application's keys, none under either bot's own.
    expect(await connections[0]!.keys(`shardwarden:{app:${sim.applicationId}}:rest:*`)).not.toEqual([]);
    expect(await connections[0]!.keys('shardwarden:{a/relay}*')).toEqual([]);
    expect(await connections[0]!.keys('shardwarden:{b/courier}*')).toEqual([]);
    // Another application's bot of the same name counts under its own key.
    const other = client(20, 250, { bot: { namespace: 'a', name: 'relay' }, applicationId: '42' });
    await other.rest.get(Routes.user('@me'));
    expect(await connections[2]!.keys('shardwarden:{app:42}:rest:*')).not.toEqual([]);
  });

  test('a route bucket spent by one client makes another client wait instead of getting 429', async () => {
    await sim.stop();
    sim = await DiscordSimulator.start({
      seed: 3,
      guilds: 1,
      guildSize: { members: 10, channels: 1, roles: 3 },
      rest: { routeLimits: { [ROLE_ROUTE]: { limit: 3, windowMs: 1500 } } },
    });
    const changes = roleChanges(sim, [...sim.world.guilds.keys()], 4);
    const a = client();
    const b = client();
    for (const change of changes.slice(0, 3)) await putRole(a.rest, change);
    await putRole(b.rest, changes[3]!);
    expect(sim.recorder.counters.rest429).toBe(0);
    const calls = roleCalls();
    expect(calls.map((c) => c.status)).toEqual([204, 204, 204, 204]);
    // B's request waited for the window A opened (minus the simulator's own bookkeeping time).
    expect(calls[3]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1500 - 100);
  });

  test('a 429 is retried after retry_after, counted, and holds the bucket for other clients too', async () => {
    const a = client();
    const b = client();
    const [first, second] = roleChanges(sim, [guilds[0]!], 2);
    sim.rateLimits.force429(ROLE_ROUTE, 400);
    const aDone = putRole(a.rest, first!);
    // A counts the 429 once its limiter has recorded it; only then must B wait for it too.
    await waitUntil(
      'A recorded the forced 429',
      async () => (await metric(a.registry, 'shardwarden_discord_rest_rate_limited_total')).length > 0,
    );
    await putRole(b.rest, second!);
    await aDone;
    const calls = roleCalls();
    expect(calls.map((c) => c.status).sort()).toEqual([204, 204, 429]);
    expect(calls[0]!.status).toBe(429);
    // A's retry and B's request both waited out retry_after.
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(400);
    expect(calls[2]!.at - calls[0]!.at).toBeGreaterThanOrEqual(400);
    expect(await metric(a.registry, 'shardwarden_discord_rest_rate_limited_total')).toEqual([
      expect.objectContaining({
        labels: { route: '/guilds/:id/members/:id/roles/:id', scope: 'user' },
        value: 1,
      }),
    ]);
    expect((await metric(a.registry, 'shardwarden_discord_rest_invalid_requests_total'))[0]!.value).toBe(1);
    expect(await metric(b.registry, 'shardwarden_discord_rest_rate_limited_total')).toEqual([]);
  });

  test('a global 429 seen by one client pauses every client', async () => {
    const a = client(50);
    const b = client(50);
    const [x, y, z] = roleChanges(sim, guilds, 3);
    // The simulator's limit is below what the limiter was told: the second request gets a global 429.
    sim.rateLimits.setGlobalPerSecond(1);
    const aDone = Promise.all([putRole(a.rest, x!), putRole(a.rest, y!)]);
    await waitUntil('a global 429', async () => roleCalls().some((c) => c.status === 429));
    sim.rateLimits.setGlobalPerSecond(50);
    const limitedAt = roleCalls().find((c) => c.status === 429)!.at;
    await putRole(b.rest, z!);
    await aDone;
    const bCall = roleCalls().find((c) => c.path.includes(`/${z![1]}/`))!;
    expect(bCall.status).toBe(204);
    // Retry-After was 1 s (the simulator rounds up, as Discord's header does).
    expect(bCall.at - limitedAt).toBeGreaterThanOrEqual(900);
    expect(sim.recorder.counters.rest429).toBe(1);
    expect(await metric(a.registry, 'shardwarden_discord_rest_rate_limited_total')).toEqual([
      expect.objectContaining({
        labels: { route: '/guilds/:id/members/:id/roles/:id', scope: 'global' },
        value: 1,
      }),
    ]);
  });

  test('a process that claims every reserved slot late still gets its turns', async () => {
    // With no margin a claim has no lateness allowed at first, and every claim is late (timers,
    // the Redis round trip): each must be allowed more, not sent to the back of the queue again.
    const { rest } = client(5, 0);
    const changes = roleChanges(sim, guilds, 12);
    const [, stallMs] = await longestStall(() => Promise.all(changes.map((c) => putRole(rest, c))));
    expect(roleCalls().map((c) => c.status)).toEqual(changes.map(() => 204));
    const times = roleCalls().map((c) => c.at);
    // Never more than the limiter's 5 in any second (the first 5 went at once). Stamped at the
    // simulator, in this process: less what its stalls can add to one request's delay (two: the
    // sender's and the stamp's), and at least 100 ms of timer jitter.
    const jitterMs = Math.max(100, 2 * stallMs);
    for (let i = 5; i < times.length; i++)
      expect(times[i]! - times[i - 5]!).toBeGreaterThanOrEqual(1000 - jitterMs);
  });

  test('interaction callbacks are not held back by a saturated global limit', async () => {
    // 1 request per second: the burst of 12 needs at least 11 s, so the callback, sent once the
    // burst has started, answers while most of it still waits for the global limit.
    sim.rateLimits.setGlobalPerSecond(1);
    // A wide margin: the simulator (in this process) stamps arrivals late on a loaded machine.
    const { rest } = client(1, 250);
    const changes = roleChanges(sim, guilds, 12);
    let finished = 0;
    const [finishedWhenAnswered, stallMs] = await longestStall(async () => {
      const burst = Promise.all(changes.map((c) => putRole(rest, c).then(() => (finished += 1))));
      await waitUntil('the burst to start', async () => roleCalls().length > 0);
      const { id, token, response } = sim.injectInteraction({
        guildId: guilds[0]!,
        userId: changes[0]![1],
        command: 'ping',
      });
      await rest.post(Routes.interactionCallback(id, token), {
        body: { type: 4, data: { content: 'pong' } },
        auth: false,
      });
      const answeredAfter = finished;
      await response;
      await burst;
      return answeredAfter;
    });
    expect(finishedWhenAnswered).toBeLessThan(changes.length / 2);
    // Sender and simulator are this process: two of its stalls may delay one request.
    expectWithinBudget(sim, 2 * stallMs, 250, changes.length);
  });

  test('metric labels and Redis keys carry route templates only: no ids, no tokens', async () => {
    const { rest, registry } = client();
    await connections[0]!.flushall(); // earlier tests' bots
    const [change] = roleChanges(sim, guilds, 1);
    await putRole(rest, change!);
    await rest.get(Routes.guildMember(guilds[0]!, '1')).catch(() => undefined); // 404: unknown member
    const { id, token } = sim.injectInteraction({ guildId: guilds[0]!, userId: change![1], command: 'ping' });
    await rest.post(Routes.interactionCallback(id, token), { body: { type: 5 }, auth: false });
    const followUp = Routes.webhook(sim.applicationId, token);
    await rest.post(followUp, { body: { content: 'done' }, auth: false });

    const text = await registry.metrics();
    const routes = [...text.matchAll(/route="([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(routes)).toEqual(
      new Set([
        '/guilds/:id/members/:id/roles/:id',
        '/guilds/:id/members/:id',
        '/interactions/:id/:token/callback',
        '/webhooks/:id/:token',
      ]),
    );
    expect(text).toContain('status="404"');
    const keys = await connections[0]!.keys('*');
    // (Interaction and guild ids may appear in keys: they are not secrets.)
    for (const secret of [sim.token, token]) {
      expect(text).not.toContain(secret);
      expect(keys.join('\n')).not.toContain(secret);
    }
    // Every key of the bot is in its hash slot.
    for (const key of keys) expect(key.startsWith(`shardwarden:{default/${botName}}:rest:`)).toBe(true);
  });

  test('bad options fail with the field named and never echo the token', () => {
    const redis = new Redis(server.url, { lazyConnect: true });
    const base = {
      bot: { namespace: 'default', name: 'ok' },
      token: 'secret-token',
      apiUrl: sim.apiUrl,
      redis,
    };
    expect(() => createDiscordRest({ ...base, globalPerSecond: 0 })).toThrow(/globalPerSecond.*0/);
    expect(() => createDiscordRest({ ...base, apiUrl: 'ftp://x' })).toThrow(/apiUrl/);
    expect(() => createDiscordRest({ ...base, bot: { namespace: 'default', name: 'a{b}' } })).toThrow(
      /name "a\{b\}"/,
    );
    expect(() => createDiscordRest({ ...base, bot: { namespace: 'Bots', name: 'ok' } })).toThrow(
      /namespace "Bots"/,
    );
    expect(() => createDiscordRest({ ...base, applicationId: 'app' })).toThrow(/applicationId/);
    expect(() => createDiscordRest({ ...base, token: '' })).toThrow(/token/);
    try {
      createDiscordRest({ ...base, timeoutMs: -1 });
    } catch (err) {
      expect((err as Error).message).toMatch(/timeoutMs/);
      expect((err as Error).message).not.toContain('secret-token');
    }
    redis.disconnect();
  });
});
