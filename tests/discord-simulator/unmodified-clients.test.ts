// Unmodified discord.js v14, @discordjs/ws and @discordjs/rest against the simulator.
import { REST, DiscordAPIError } from '@discordjs/rest';
import { CompressionMethod, WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';
import { Client, Events, GatewayIntentBits, Routes, type Interaction } from 'discord.js';
import { DiscordSimulator, messagePayload, shardOfGuild } from '../../discord-simulator/index.js';

function client(sim: DiscordSimulator, shards: 'auto' | number[], shardCount?: number) {
  return new Client({
    intents: [GatewayIntentBits.Guilds],
    shards,
    ...(shardCount === undefined ? {} : { shardCount }),
    rest: { api: sim.apiUrl },
  });
}

function waitReady(c: Client): Promise<void> {
  return new Promise((resolve) => c.once(Events.ClientReady, () => resolve()));
}

describe('discord.js v14 Client', () => {
  let sim: DiscordSimulator;
  let c: Client | undefined;
  beforeEach(async () => {
    // 2,500 guilds: Discord's rule gives 3 recommended shards; max_concurrency 4 lets them start together.
    sim = await DiscordSimulator.start({
      seed: 3,
      guilds: 2_500,
      guildSize: { members: 2 },
      gateway: { maxConcurrency: 4 },
    });
  });
  afterEach(async () => {
    await c?.destroy();
    c = undefined;
    await sim.stop();
  });

  test("shards: 'auto' uses the recommended count and every shard reaches READY with its guilds", async () => {
    expect(sim.recommendedShards()).toBe(3);
    c = client(sim, 'auto');
    const ready = waitReady(c);
    await c.login(sim.token);
    await ready;
    expect(c.ws.shards.size).toBe(3);
    expect(c.guilds.cache.size).toBe(2_500);
    expect(sim.recorder.identifies.map((i) => `${i.shardId}/${i.shardCount}`).sort()).toEqual([
      '0/3',
      '1/3',
      '2/3',
    ]);
    expect(sim.recorder.violations).toEqual([]);
  });

  test("fixed shards: a client for shards [1] of 4 gets exactly that shard's guilds, and interaction.reply() is recorded", async () => {
    c = client(sim, [1], 4);
    const ready = waitReady(c);
    await c.login(sim.token);
    await ready;
    const mine = [...sim.world.guilds.keys()].filter((id) => shardOfGuild(id, 4) === 1);
    expect(c.guilds.cache.size).toBe(mine.length);
    expect(sim.recorder.identifies).toEqual([expect.objectContaining({ shardId: 1, shardCount: 4 })]);

    c.on(Events.InteractionCreate, (interaction: Interaction) => {
      if (interaction.isChatInputCommand())
        void interaction.reply({ content: `pong from ${interaction.guildId}` });
    });
    const injected = sim.injectInteraction({
      guildId: mine[0]!,
      userId: String(BigInt(mine[0]!) + 1n),
      command: 'ping',
    });
    const response = await injected.response;
    expect(response).toMatchObject({ kind: 'callback', type: 4, data: { content: `pong from ${mine[0]}` } });
    expect(response.latencyMs).toBeLessThan(3_000);
  });
});

describe('@discordjs/ws WebSocketManager', () => {
  test('resumes after an injected disconnect and receives the replayed dispatches', async () => {
    const sim = await DiscordSimulator.start({
      seed: 5,
      guilds: 10,
      gateway: { heartbeatIntervalMs: 5_000 },
    });
    const rest = new REST({ api: sim.apiUrl }).setToken(sim.token);
    const manager = new WebSocketManager({
      token: sim.token,
      intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages,
      rest,
      shardCount: 1,
    });
    const seen: string[] = [];
    let resumed = 0;
    manager.on(WebSocketShardEvents.Dispatch, (payload) => {
      if (payload.t === 'MESSAGE_CREATE') seen.push((payload.d as { id: string }).id);
    });
    manager.on(WebSocketShardEvents.Resumed, () => (resumed += 1));
    const guild = [...sim.world.guilds.keys()][0]!;
    const message = (id: string) =>
      messagePayload({ id, guildId: guild, channelId: sim.world.firstChannelId(sim.world.guild(guild)!) });
    try {
      await manager.connect();
      sim.dispatch('MESSAGE_CREATE', message('before'), { guildId: guild });
      await waitFor(() => seen.includes('before'));
      expect(sim.fault(0, { kind: 'drop' })).toBe(1);
      // Sent while the connection is gone: the session keeps them for the resume.
      for (const id of ['during-1', 'during-2', 'during-3'])
        sim.dispatch('MESSAGE_CREATE', message(id), { guildId: guild });
      await waitFor(() => resumed === 1 && seen.length === 4, 20_000);
      expect(seen).toEqual(['before', 'during-1', 'during-2', 'during-3']);
      expect(sim.recorder.identifies).toHaveLength(1);
      expect(sim.recorder.resumes).toEqual([expect.objectContaining({ shardId: 0, replayed: 3 })]);
    } finally {
      await manager.destroy();
      await sim.stop();
    }
  });
});

describe('@discordjs/ws with transport compression', () => {
  test('CompressionMethod.ZlibNative (compress=zlib-stream) connects and receives dispatches', async () => {
    const sim = await DiscordSimulator.start({ seed: 6, guilds: 3 });
    const manager = new WebSocketManager({
      token: sim.token,
      intents: GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages,
      rest: new REST({ api: sim.apiUrl }).setToken(sim.token),
      shardCount: 1,
      compression: CompressionMethod.ZlibNative,
    });
    const seen: string[] = [];
    manager.on(WebSocketShardEvents.Dispatch, (payload) => seen.push(payload.t));
    const debug: string[] = [];
    manager.on(WebSocketShardEvents.Debug, (message) => debug.push(message));
    const guild = [...sim.world.guilds.keys()][0]!;
    try {
      await manager.connect();
      await waitFor(() => seen.filter((t) => t === 'GUILD_CREATE').length === 3, 30_000);
      sim.dispatch(
        'MESSAGE_CREATE',
        messagePayload({
          id: '1',
          guildId: guild,
          channelId: sim.world.firstChannelId(sim.world.guild(guild)!),
        }),
        { guildId: guild },
      );
      await waitFor(() => seen.includes('MESSAGE_CREATE'), 30_000);
      expect(seen).toEqual(['READY', 'GUILD_CREATE', 'GUILD_CREATE', 'GUILD_CREATE', 'MESSAGE_CREATE']);
      expect(sim.recorder.closes).toEqual([]);
      expect(debug.some((m) => m.includes('compress=zlib-stream'))).toBe(true);
    } finally {
      await manager.destroy();
      await sim.stop();
    }
  });
});

describe('@discordjs/rest', () => {
  test('gets a 429 from the global limit, waits retry_after and succeeds', async () => {
    const sim = await DiscordSimulator.start({ rest: { globalPerSecond: 5 } });
    const rest = new REST({ api: sim.apiUrl, globalRequestsPerSecond: 50 }).setToken(sim.token);
    try {
      const users = await Promise.all(
        Array.from({ length: 12 }, () => rest.get(Routes.user('@me')) as Promise<{ id: string }>),
      );
      expect(users.every((u) => u.id === sim.world.botUser.id)).toBe(true);
      expect(sim.recorder.counters.rest429).toBeGreaterThan(0);
      const calls = sim.recorder.restCalls.filter((r) => r.route === 'GET /users/@me');
      expect(calls.filter((r) => r.status === 200)).toHaveLength(12);
      expect(calls.filter((r) => r.status === 429).length).toBe(sim.recorder.counters.rest429);
    } finally {
      await sim.stop();
    }
  });

  test('a per-route 429 with retry_after is retried', async () => {
    const sim = await DiscordSimulator.start({ guilds: 1 });
    const rest = new REST({ api: sim.apiUrl }).setToken(sim.token);
    const guild = [...sim.world.guilds.keys()][0]!;
    sim.rateLimits.force429('GET /guilds/:guild_id/roles', 300);
    try {
      const started = Date.now();
      const roles = (await rest.get(Routes.guildRoles(guild))) as { id: string }[];
      expect(roles[0]!.id).toBe(guild); // @everyone has the guild's id
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(sim.recorder.restCalls.map((r) => r.status)).toEqual([429, 200]);
    } finally {
      await sim.stop();
    }
  });

  test('a bad token gets 401 (REST) and discord.js login fails with it', async () => {
    const sim = await DiscordSimulator.start({ guilds: 1 });
    const rest = new REST({ api: sim.apiUrl }).setToken('wrong');
    const c = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: sim.apiUrl } });
    try {
      const err = await rest.get(Routes.gatewayBot()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiscordAPIError);
      expect((err as DiscordAPIError).status).toBe(401);
      await expect(c.login('wrong')).rejects.toThrow();
      expect(sim.recorder.counters.restInvalid).toBe(2);
    } finally {
      await c.destroy();
      await sim.stop();
    }
  });
});

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
