import { REST } from '@discordjs/rest';
import { WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';
import { GatewayIntentBits } from 'discord.js';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { waitUntil } from '../../testenv/index.js';

// Response bodies are read loosely here; the assertions check their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();

describe('REST', () => {
  let sim: DiscordSimulator;
  let guild: string;
  const api = (path: string, init: RequestInit = {}, auth = true) =>
    fetch(`${sim.apiUrl}/v10${path}`, {
      ...init,
      headers: {
        'content-type': 'application/json',
        ...(auth ? { authorization: `Bot ${sim.token}` } : {}),
        ...init.headers,
      },
    });
  beforeEach(async () => {
    sim = await DiscordSimulator.start({
      seed: 9,
      guilds: 1,
      guildSize: { members: 3, roles: 2 },
      // Discord's own 3 s: answers in time stay in time on a busy machine.
      interactionResponseWindowMs: 3_000,
      // Discord's 10 per route, over a window no busy machine can outlast between 11 requests.
      rest: { routeLimits: { 'GET /guilds/:guild_id/roles': { limit: 10, windowMs: 60_000 } } },
    });
    guild = [...sim.world.guilds.keys()][0]!;
  });
  afterEach(() => sim.stop());

  test('GET /gateway/bot reports the recommended shards and session_start_limit, and follows the guild count', async () => {
    const body = await json(api('/gateway/bot'));
    expect(body).toEqual({
      url: sim.gatewayUrl,
      shards: 1,
      session_start_limit: {
        total: 1000,
        remaining: 1000,
        reset_after: expect.any(Number),
        max_concurrency: 1,
      },
    });
    sim.addGuilds(1_500);
    expect((await json(api('/gateway/bot'))).shards).toBe(2);
    expect((await api('/gateway/bot', {}, false)).status).toBe(401);
  });

  test('responses carry X-RateLimit-* headers of the route bucket', async () => {
    const res = await api(`/guilds/${guild}/roles`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ratelimit-limit')).toBe('10');
    expect(res.headers.get('x-ratelimit-remaining')).toBe('9');
    expect(res.headers.get('x-ratelimit-bucket')).toMatch(/^[0-9a-f]{16}$/);
    expect(Number(res.headers.get('x-ratelimit-reset-after'))).toBeGreaterThan(0);
    for (let i = 0; i < 9; i++) await api(`/guilds/${guild}/roles`);
    const limited = await api(`/guilds/${guild}/roles`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-ratelimit-scope')).toBe('user');
    const body = await json(limited);
    expect(body).toMatchObject({ message: 'You are being rate limited.', global: false });
    expect(body.retry_after).toBeGreaterThan(0);
  });

  test('member roles: add and remove are applied, recorded, and unknown ids get Discord error codes', async () => {
    const member = String(BigInt(guild) + 1n);
    const role = sim.world.roles(sim.world.guild(guild)!)[1]!.id;
    expect((await api(`/guilds/${guild}/members/${member}/roles/${role}`, { method: 'PUT' })).status).toBe(
      204,
    );
    expect((await json(api(`/guilds/${guild}/members/${member}`))).roles).toEqual([role]);
    expect((await api(`/guilds/${guild}/members/${member}/roles/${role}`, { method: 'DELETE' })).status).toBe(
      204,
    );
    expect((await json(api(`/guilds/${guild}/members/${member}`))).roles).toEqual([]);
    expect(await json(api(`/guilds/${guild}/members/42`))).toEqual({
      message: 'Unknown Member',
      code: 10007,
    });
    expect(await json(api(`/guilds/${guild}/members/${member}/roles/42`, { method: 'PUT' }))).toEqual({
      message: 'Unknown Role',
      code: 10011,
    });
    expect(await json(api(`/guilds/1/roles`))).toEqual({ message: 'Unknown Guild', code: 10004 });
    expect(
      sim.recorder.restCalls
        .filter((c) => c.route.includes('/roles/:role_id'))
        .map((c) => `${c.method} ${c.status}`),
    ).toEqual(['PUT 204', 'DELETE 204', 'PUT 404']);
  });

  test('application command bulk overwrite stores and validates', async () => {
    const good = await api(`/applications/${sim.applicationId}/commands`, {
      method: 'PUT',
      body: JSON.stringify([{ name: 'verify', description: 'Link a wallet', type: 1 }]),
    });
    expect(good.status).toBe(200);
    expect((await json(good))[0]).toMatchObject({
      name: 'verify',
      application_id: sim.applicationId,
      id: expect.any(String),
    });
    const bad = await api(`/applications/${sim.applicationId}/commands`, {
      method: 'PUT',
      body: JSON.stringify([{ name: 'Bad Name', description: 'x' }]),
    });
    expect(bad.status).toBe(400);
    expect((await json(bad)).code).toBe(50035);
  });

  test('interactions: callback once within the window, then follow-up and @original edit; late and double answers refused', async () => {
    const a = sim.injectInteraction({
      guildId: guild,
      userId: String(BigInt(guild) + 1n),
      command: 'status',
    });
    const followupBefore = await api(
      `/webhooks/${sim.applicationId}/${a.token}`,
      { method: 'POST', body: '{"content":"x"}' },
      false,
    );
    expect(followupBefore.status).toBe(404); // no initial response yet
    const cb = await api(
      `/interactions/${a.id}/${a.token}/callback?with_response=true`,
      { method: 'POST', body: JSON.stringify({ type: 5 }) },
      false,
    );
    expect(cb.status).toBe(200);
    expect((await json(cb)).interaction).toMatchObject({
      response_message_loading: true,
      response_message_ephemeral: false,
    });
    const again = await api(
      `/interactions/${a.id}/${a.token}/callback`,
      { method: 'POST', body: JSON.stringify({ type: 4, data: { content: 'x' } }) },
      false,
    );
    expect(await json(again)).toEqual({
      message: 'Interaction has already been acknowledged.',
      code: 40060,
    });
    expect(
      (
        await api(
          `/webhooks/${sim.applicationId}/${a.token}/messages/@original`,
          { method: 'PATCH', body: '{"content":"done"}' },
          false,
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await api(
          `/webhooks/${sim.applicationId}/${a.token}`,
          { method: 'POST', body: '{"content":"more"}' },
          false,
        )
      ).status,
    ).toBe(200);
    expect(sim.recorder.interactionResponses.map((r) => r.kind)).toEqual([
      'callback',
      'edit-original',
      'followup',
    ]);

    const late = sim.injectInteraction({
      guildId: guild,
      userId: String(BigInt(guild) + 1n),
      command: 'status',
    });
    // Read after the interaction was sent: once 3 s have passed since, the answer is late.
    const sentBy = Date.now();
    await waitUntil('the answer window passed', async () => Date.now() - sentBy > 3_000);
    const res = await api(
      `/interactions/${late.id}/${late.token}/callback`,
      { method: 'POST', body: JSON.stringify({ type: 4, data: { content: 'x' } }) },
      false,
    );
    expect(await json(res)).toEqual({ message: 'Unknown interaction', code: 10062 });
    expect(sim.recorder.violations.map((v) => v.kind)).toEqual(['interaction-twice', 'interaction-late']);
  });
});

describe('control API and identify throttling across processes', () => {
  test('two unmodified managers with their own in-memory throttlers identify in one bucket too fast, and the simulator catches it', async () => {
    // Two gateway processes (pods) each own one shard of 2; max_concurrency 1 puts both in bucket 0.
    const sim = await DiscordSimulator.start({ guilds: 4 });
    const managers = [0, 1].map(
      (shard) =>
        new WebSocketManager({
          token: sim.token,
          intents: GatewayIntentBits.Guilds,
          rest: new REST({ api: sim.apiUrl }).setToken(sim.token),
          shardCount: 2,
          shardIds: [shard],
        }),
    );
    try {
      const ready = managers.map((m) => new Promise((r) => m.once(WebSocketShardEvents.Ready, r)));
      await Promise.all(managers.map((m) => m.connect()));
      await Promise.all(ready);
      expect(sim.recorder.violations.filter((v) => v.kind === 'identify-concurrency')).toHaveLength(1);
    } finally {
      await Promise.all(managers.map((m) => m.destroy()));
      await sim.stop();
    }
  }, 30_000);

  test('guilds, dispatches, faults and records over HTTP', async () => {
    const sim = await DiscordSimulator.start({ guilds: 0 });
    const control = (path: string, body?: unknown) =>
      fetch(
        `${sim.controlUrl}${path}`,
        body === undefined
          ? {}
          : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
      );
    try {
      const added = await json(control('/guilds', { count: 1_001 }));
      expect(added.ids).toHaveLength(1_001);
      expect(added.recommendedShards).toBe(2);
      const del = await fetch(`${sim.controlUrl}/guilds/${added.ids[0]}`, { method: 'DELETE' });
      expect((await json(del)).recommendedShards).toBe(1);
      expect(await json(control('/dispatch', { type: 'MESSAGE_CREATE', count: 10 }))).toEqual({
        sent: 10,
      });
      // No session is connected: the GUILD_DELETE and the 10 messages reach nobody.
      expect(sim.recorder.counters.dispatchesUndelivered).toBe(11);
      const badFault = await control('/faults', { shardId: 0, fault: { kind: 'explode' } });
      expect(badFault.status).toBe(400);
      expect((await json(badFault)).message).toContain('fault.kind must be one of');
      const state = await json(control('/state'));
      expect(state).toMatchObject({ guilds: 1_000, recommendedShards: 1, connectedShards: [] });
    } finally {
      await sim.stop();
    }
  });
});
