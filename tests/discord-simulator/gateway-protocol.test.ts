import { CloseCode, DiscordSimulator, Intent, Op, shardOfGuild } from '../../discord-simulator/index.js';
import { RawGatewayClient } from './raw-gateway-client.js';
import { waitUntil } from '../../testenv/index.js';

const clients: RawGatewayClient[] = [];
async function connect(sim: DiscordSimulator, query?: string) {
  const c = await RawGatewayClient.connect(sim.gatewayUrl, query);
  clients.push(c);
  return c;
}

describe('gateway protocol', () => {
  let sim: DiscordSimulator;
  beforeEach(async () => {
    sim = await DiscordSimulator.start({
      seed: 42,
      guilds: 40,
      guildSize: { members: 5, channels: 2, roles: 2 },
      gateway: {
        heartbeatIntervalMs: 1_000,
        identifyWindowMs: 300,
        maxConcurrency: 2,
        maxGuildsPerShard: 30,
      },
    });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    await sim.stop();
  });

  test('HELLO, heartbeat ACK, and a heartbeat requested by the server', async () => {
    const c = await connect(sim);
    const hello = await c.next((p) => p.op === 10);
    expect(hello.d).toEqual({ heartbeat_interval: 1_000 });
    c.send(1, null);
    await c.next((p) => p.op === 11);
    c.identify(sim.token, [0, 2]);
    await c.dispatch('READY');
    expect(sim.fault(0, { kind: 'request-heartbeat' })).toBe(1);
    await c.next((p) => p.op === 1);
  });

  test('IDENTIFY → READY with the shard and its unavailable guilds, then one GUILD_CREATE per guild of the shard', async () => {
    const c = await connect(sim);
    c.identify(sim.token, [1, 2], Intent.Guilds);
    const ready = await c.dispatch('READY');
    const d = ready.d as {
      session_id: string;
      resume_gateway_url: string;
      shard: number[];
      guilds: { id: string; unavailable: boolean }[];
    };
    expect(d.shard).toEqual([1, 2]);
    expect(d.resume_gateway_url).toBe(sim.gatewayUrl);
    expect(d.session_id).toMatch(/^[0-9a-f]{32}$/);
    const expected = [...sim.world.guilds.keys()].filter((id) => shardOfGuild(id, 2) === 1);
    expect(expected.length).toBe(20);
    expect(d.guilds.map((g) => g.id).sort()).toEqual(expected.sort());
    expect(d.guilds.every((g) => g.unavailable)).toBe(true);
    await c.next(() => c.received.filter((p) => p.t === 'GUILD_CREATE').length === expected.length);
    const creates = c.received
      .filter((p) => p.t === 'GUILD_CREATE')
      .map((p) => p.d as { id: string; members: unknown[]; roles: unknown[]; channels: unknown[] });
    expect(creates.map((g) => g.id).sort()).toEqual(expected.sort());
    expect(creates[0]!.members).toHaveLength(6); // 5 members + the bot
    expect(creates[0]!.roles).toHaveLength(3); // @everyone + 2
    expect(creates[0]!.channels).toHaveLength(2);
    // Sequence numbers are consecutive from 1.
    expect(c.received.filter((p) => p.op === 0).map((p) => p.s)).toEqual(
      Array.from({ length: 21 }, (_, i) => i + 1),
    );
  });

  test('intents are enforced: no GUILD_CREATE without Guilds, no member events without GuildMembers', async () => {
    const c = await connect(sim);
    c.identify(sim.token, [0, 2], Intent.GuildMessages);
    await c.dispatch('READY');
    const guild = [...sim.world.guilds.keys()].find((id) => shardOfGuild(id, 2) === 0)!;
    sim.dispatch('GUILD_MEMBER_ADD', { guild_id: guild, user: { id: '1' } }, { guildId: guild });
    sim.dispatch('MESSAGE_CREATE', { guild_id: guild, id: '2', content: '' }, { guildId: guild });
    await c.dispatch('MESSAGE_CREATE');
    expect(c.received.some((p) => p.t === 'GUILD_CREATE' || p.t === 'GUILD_MEMBER_ADD')).toBe(false);
    expect(sim.recorder.counters.dispatchesFilteredByIntent).toBe(21);
  });

  test.each([
    ['bad token', (c: RawGatewayClient) => c.identify('not-a-token'), CloseCode.AuthenticationFailed],
    [
      'shard id out of range',
      (c: RawGatewayClient, s: DiscordSimulator) => c.identify(s.token, [2, 2]),
      CloseCode.InvalidShard,
    ],
    [
      'too many guilds on one shard',
      (c: RawGatewayClient, s: DiscordSimulator) => c.identify(s.token, [0, 1]),
      CloseCode.ShardingRequired,
    ],
    [
      'unknown intent bits',
      (c: RawGatewayClient, s: DiscordSimulator) => c.identify(s.token, [0, 2], 1 << 30),
      CloseCode.InvalidIntents,
    ],
    [
      'a payload before identify',
      (c: RawGatewayClient) => c.send(3, { status: 'online' }),
      CloseCode.NotAuthenticated,
    ],
    ['an unknown opcode', (c: RawGatewayClient) => c.send(99, null), CloseCode.UnknownOpcode],
    ['invalid JSON', (c: RawGatewayClient) => c.ws.send('{nope'), CloseCode.DecodeError],
  ])('%s closes with the documented code', async (_name, act, code) => {
    const c = await connect(sim);
    await c.next((p) => p.op === 10);
    act(c, sim);
    expect((await c.closed).code).toBe(code);
  });

  /** Adds guilds one at a time until `shardId` of 2 has `count` of them (ids follow the clock). */
  function fillShard(shardId: number, count: number): string[] {
    const added: string[] = [];
    const onShard = () => [...sim.world.guilds.keys()].filter((id) => shardOfGuild(id, 2) === shardId);
    while (onShard().length < count) {
      const [guild] = sim.addGuilds(1);
      if (shardOfGuild(guild!.id, 2) === shardId) added.push(guild!.id);
    }
    return added;
  }

  test('guilds added after a READY are in the next READY of their shard, and the guild removed is not', async () => {
    const first = await connect(sim);
    first.identify(sim.token, [0, 2], Intent.Guilds);
    await first.dispatch('READY'); // the simulator's guilds by shard, computed for 2 shards
    const [added, removed] = fillShard(1, 22);
    sim.removeGuild(removed!);
    const second = await connect(sim);
    second.identify(sim.token, [1, 2], Intent.Guilds);
    const ids = ((await second.dispatch('READY')).d as { guilds: { id: string }[] }).guilds.map((g) => g.id);
    expect(ids).toContain(added);
    expect(ids).not.toContain(removed);
    expect(ids).toHaveLength(21);
  });

  test('guilds added past the per-shard limit after a READY make the next IDENTIFY of that shard 4011', async () => {
    const first = await connect(sim);
    first.identify(sim.token, [0, 2], Intent.Guilds);
    await first.dispatch('READY');
    fillShard(1, 31); // the limit is 30
    const second = await connect(sim);
    second.identify(sim.token, [1, 2], Intent.Guilds);
    expect((await second.closed).code).toBe(CloseCode.ShardingRequired);
  });

  test('privileged intents the application has not enabled: 4014', async () => {
    await sim.stop();
    sim = await DiscordSimulator.start({ guilds: 2, gateway: { enabledPrivilegedIntents: 0 } });
    const c = await connect(sim);
    c.identify(sim.token, [0, 1], Intent.Guilds | Intent.GuildMembers);
    expect((await c.closed).code).toBe(CloseCode.DisallowedIntents);
  });

  describe('Request Guild Members (op 8)', () => {
    type Chunk = {
      guild_id: string;
      members: { user: { id: string; username: string } }[];
      chunk_index: number;
      chunk_count: number;
      not_found?: string[];
      nonce?: string;
      presences?: unknown[];
    };
    async function sessionWith(intents: number, members = 2_500) {
      await sim.stop();
      sim = await DiscordSimulator.start({ guilds: 1, guildSize: { members } });
      const c = await connect(sim);
      c.identify(sim.token, [0, 1], intents);
      await c.dispatch('READY');
      return { c, guild: [...sim.world.guilds.keys()][0]! };
    }
    const chunks = (c: RawGatewayClient, nonce: string) =>
      c.received
        .filter((p) => p.t === 'GUILD_MEMBERS_CHUNK' && (p.d as Chunk).nonce === nonce)
        .map((p) => p.d as Chunk);
    const lastChunk = (c: RawGatewayClient, nonce: string) =>
      c.next(
        (p) =>
          p.t === 'GUILD_MEMBERS_CHUNK' &&
          (p.d as Chunk).nonce === nonce &&
          (p.d as Chunk).chunk_index === (p.d as Chunk).chunk_count - 1,
      );

    test('the whole member list: chunks of 1,000 with chunk_index/chunk_count and the nonce', async () => {
      const { c, guild } = await sessionWith(Intent.Guilds | Intent.GuildMembers);
      c.send(Op.RequestGuildMembers, { guild_id: guild, query: '', limit: 0, nonce: 'all' });
      await lastChunk(c, 'all');
      const got = chunks(c, 'all');
      expect(got.map((k) => [k.chunk_index, k.chunk_count, k.members.length])).toEqual([
        [0, 3, 1_000],
        [1, 3, 1_000],
        [2, 3, 501], // 2,500 members and the bot
      ]);
      expect(new Set(got.flatMap((k) => k.members.map((m) => m.user.id))).size).toBe(2_501);
      expect(
        got.every((k) => k.guild_id === guild && k.not_found === undefined && k.presences === undefined),
      ).toBe(true);
    });

    test('a query is a case-insensitive username prefix, capped by limit (and by 100)', async () => {
      const { c, guild } = await sessionWith(Intent.Guilds);
      c.send(Op.RequestGuildMembers, { guild_id: guild, query: 'MEMBER12', limit: 5, nonce: 'q' });
      c.send(Op.RequestGuildMembers, { guild_id: guild, query: 'member', limit: 0, nonce: 'wide' });
      c.send(Op.RequestGuildMembers, { guild_id: guild, query: 'nobody', limit: 10, nonce: 'none' });
      await lastChunk(c, 'none');
      expect(chunks(c, 'q')[0]!.members.map((m) => m.user.username)).toEqual([
        'member12',
        'member120',
        'member121',
        'member122',
        'member123',
      ]);
      expect(chunks(c, 'wide')[0]!.members).toHaveLength(100);
      expect(chunks(c, 'none')).toEqual([
        expect.objectContaining({ members: [], chunk_index: 0, chunk_count: 1 }),
      ]);
    });

    test('user_ids: the members found, the rest in not_found; an over-long nonce is dropped', async () => {
      const { c, guild } = await sessionWith(Intent.Guilds);
      const known = String(BigInt(guild) + 7n);
      c.send(Op.RequestGuildMembers, { guild_id: guild, user_ids: [known, '42'], nonce: 'ids' });
      c.send(Op.RequestGuildMembers, { guild_id: guild, user_ids: known, nonce: 'x'.repeat(33) });
      const first = (await lastChunk(c, 'ids')).d as Chunk;
      expect(first.members.map((m) => m.user.id)).toEqual([known]);
      expect(first.not_found).toEqual(['42']);
      const second = (
        await c.next((p) => p.t === 'GUILD_MEMBERS_CHUNK' && (p.d as Chunk).nonce === undefined)
      ).d as Chunk;
      expect(second.nonce).toBeUndefined();
      expect(second.members.map((m) => m.user.id)).toEqual([known]);
    });

    test('the whole list without the GuildMembers intent closes with 4014; a query does not need it', async () => {
      const { c, guild } = await sessionWith(Intent.Guilds, 10);
      c.send(Op.RequestGuildMembers, { guild_id: guild, query: 'member1', limit: 10, nonce: 'ok' });
      await lastChunk(c, 'ok');
      c.send(Op.RequestGuildMembers, { guild_id: guild, query: '', limit: 0 });
      expect((await c.closed).code).toBe(CloseCode.DisallowedIntents);
    });
  });

  test.each(['zlib-stream', 'zstd-stream'])(
    'transport compression %s: every payload a binary message of one compression stream, in order',
    async (compress) => {
      // Discord's heartbeat interval: this client does not heartbeat, and compressing every
      // payload on a busy machine may outlast the file's 1 s interval's zombie close.
      await sim.stop();
      sim = await DiscordSimulator.start({
        seed: 42,
        guilds: 40,
        guildSize: { members: 5, channels: 2, roles: 2 },
        gateway: { maxConcurrency: 2, maxGuildsPerShard: 30 },
      });
      const c = await connect(sim, `?v=10&encoding=json&compress=${compress}`);
      c.identify(sim.token, [1, 2], Intent.Guilds);
      await c.dispatch('READY');
      await c.next(() => c.received.filter((p) => p.t === 'GUILD_CREATE').length === 20);
      expect(c.received[0]!.op).toBe(10);
      expect(c.received.filter((p) => p.op === 0).map((p) => p.s)).toEqual(
        Array.from({ length: 21 }, (_, i) => i + 1),
      );
      expect(c.compressedMessages).toHaveLength(c.received.length);
      // zlib-stream messages end where Discord's do, at the Z_SYNC_FLUSH marker clients look for.
      if (compress === 'zlib-stream')
        expect(
          c.compressedMessages.every((m) => m.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff]))),
        ).toBe(true);
    },
  );

  test('an unknown transport compression: 4002', async () => {
    const c = await connect(sim, '?v=10&encoding=json&compress=brotli');
    expect(await c.closed).toEqual({
      code: CloseCode.DecodeError,
      reason: expect.stringContaining('zlib-stream'),
    });
  });

  test('identifying twice on one connection: 4005', async () => {
    const c = await connect(sim);
    c.identify(sim.token, [0, 2]);
    await c.dispatch('READY');
    c.identify(sim.token, [0, 2]);
    expect((await c.closed).code).toBe(CloseCode.AlreadyAuthenticated);
  });

  test('wrong API version: 4012', async () => {
    const c = await connect(sim, '?v=6&encoding=json');
    expect((await c.closed).code).toBe(CloseCode.InvalidAPIVersion);
  });

  test('more than the payload limit in the window: 4008 and a recorded violation', async () => {
    await sim.stop();
    sim = await DiscordSimulator.start({ guilds: 1, gateway: { payloadLimit: 5 } });
    const c = await connect(sim);
    for (let i = 0; i < 6; i++) c.send(1, null);
    expect((await c.closed).code).toBe(CloseCode.RateLimited);
    expect(sim.recorder.violations.map((v) => v.kind)).toEqual(['gateway-rate-limit']);
  });

  test('a connection that stops heartbeating is closed as a zombie (4009)', async () => {
    const c = await connect(sim);
    c.identify(sim.token, [0, 2]);
    await c.dispatch('READY');
    const started = Date.now();
    expect((await c.closed).code).toBe(CloseCode.SessionTimedOut);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  test('RESUME replays every dispatch after the given sequence, then RESUMED', async () => {
    const c = await connect(sim);
    c.identify(sim.token, [0, 2], Intent.Guilds);
    const ready = await c.dispatch('READY');
    const sessionId = (ready.d as { session_id: string }).session_id;
    await c.next(() => c.received.filter((p) => p.t === 'GUILD_CREATE').length === 20);
    const lastSeq = Math.max(...c.received.map((p) => p.s ?? 0));
    c.close(4200); // not 1000/1001: the session stays resumable
    await c.closed;
    const guild = [...sim.world.guilds.keys()].find((id) => shardOfGuild(id, 2) === 0)!;
    for (let i = 0; i < 5; i++)
      sim.dispatch('INTERACTION_CREATE', { id: String(i), guild_id: guild }, { guildId: guild });

    const again = await connect(sim);
    again.send(6, { token: sim.token, session_id: sessionId, seq: lastSeq - 2 });
    await again.dispatch('RESUMED');
    const replayed = again.received.filter((p) => p.op === 0 && p.t !== 'RESUMED');
    expect(replayed.map((p) => p.s)).toEqual([
      lastSeq - 1,
      lastSeq,
      lastSeq + 1,
      lastSeq + 2,
      lastSeq + 3,
      lastSeq + 4,
      lastSeq + 5,
    ]);
    expect(replayed.slice(2).map((p) => (p.d as { id: string }).id)).toEqual(['0', '1', '2', '3', '4']);
    expect(sim.recorder.resumes).toEqual([
      expect.objectContaining({ sessionId, shardId: 0, fromSeq: lastSeq - 2, replayed: 7 }),
    ]);
  });

  test('RESUME with a sequence from the future: 4007; of an unknown session: INVALID_SESSION', async () => {
    const c = await connect(sim);
    c.identify(sim.token, [0, 2]);
    const sessionId = ((await c.dispatch('READY')).d as { session_id: string }).session_id;
    c.close(4200);
    await c.closed;
    const unknown = await connect(sim);
    unknown.send(6, { token: sim.token, session_id: 'nope', seq: 1 });
    expect((await unknown.next((p) => p.op === 9)).d).toBe(false);
    const future = await connect(sim);
    future.send(6, { token: sim.token, session_id: sessionId, seq: 999 });
    expect((await future.closed).code).toBe(CloseCode.InvalidSeq);
  });

  test('closing with 1000 ends the session: it cannot be resumed', async () => {
    const c = await connect(sim);
    c.identify(sim.token, [0, 2]);
    const sessionId = ((await c.dispatch('READY')).d as { session_id: string }).session_id;
    c.close(1000);
    await c.closed;
    const again = await connect(sim);
    again.send(6, { token: sim.token, session_id: sessionId, seq: 1 });
    expect((await again.next((p) => p.op === 9)).d).toBe(false);
  });

  test('injected RECONNECT and INVALID_SESSION reach the shard', async () => {
    const c = await connect(sim);
    c.identify(sim.token, [1, 2]);
    await c.dispatch('READY');
    expect(sim.fault(1, { kind: 'reconnect' })).toBe(1);
    await c.next((p) => p.op === 7);
    expect(sim.fault(1, { kind: 'invalid-session', resumable: true })).toBe(1);
    expect((await c.next((p) => p.op === 9)).d).toBe(true);
    expect(sim.fault(0, { kind: 'reconnect' })).toBe(0);
  });

  test('identify limits: one identify per max_concurrency bucket per window, session starts counted', async () => {
    // Discord's own 5 s window: the refused identify below comes well inside it on a busy machine.
    await sim.stop();
    sim = await DiscordSimulator.start({
      seed: 42,
      guilds: 40,
      gateway: { identifyWindowMs: 5_000, maxConcurrency: 2, maxGuildsPerShard: 30 },
    });
    const before = sim.gateway.sessionStartLimit().remaining;
    const a = await connect(sim);
    const b = await connect(sim);
    const c = await connect(sim);
    a.identify(sim.token, [0, 2]); // bucket 0
    await a.dispatch('READY');
    b.identify(sim.token, [1, 2]); // bucket 1: allowed at the same time
    await b.dispatch('READY');
    c.identify(sim.token, [0, 2]); // bucket 0 again within the window: refused
    expect((await c.next((p) => p.op === 9)).d).toBe(false);
    expect(sim.recorder.violations).toEqual([
      expect.objectContaining({ kind: 'identify-concurrency', shardId: 0 }),
    ]);
    expect(sim.gateway.sessionStartLimit().remaining).toBe(before - 2);
    // The bucket's window, counted from the accepted identify as the simulator recorded it.
    const accepted = sim.recorder.identifies.find((i) => i.bucket === 0 && !i.refused)!.at;
    await waitUntil('the identify window passed', async () => Date.now() - accepted >= 5_000);
    c.identify(sim.token, [0, 2]);
    await c.dispatch('READY');
    expect(sim.recorder.identifies.map((i) => [i.shardId, i.bucket, i.refused ?? 'ok'])).toEqual([
      [0, 0, 'ok'],
      [1, 1, 'ok'],
      [0, 0, 'identify rate limit'],
      [0, 0, 'ok'],
    ]);
  });

  test('no session starts left: INVALID_SESSION and a violation', async () => {
    sim.gateway.setSessionStartsRemaining(0);
    const c = await connect(sim);
    c.identify(sim.token, [0, 2]);
    expect((await c.next((p) => p.op === 9)).d).toBe(false);
    expect(sim.recorder.violations[0]?.kind).toBe('session-start-limit');
  });

  test('seeded simulators build the same world and ids', async () => {
    const other = await DiscordSimulator.start({
      seed: 42,
      guilds: 40,
      guildSize: { members: 5, channels: 2, roles: 2 },
    });
    try {
      expect([...other.world.guilds.keys()]).toEqual([...sim.world.guilds.keys()]);
      expect(other.token).toBe(sim.token);
    } finally {
      await other.stop();
    }
  });
});
