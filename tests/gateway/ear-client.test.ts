// The cluster processes' client (EarClient, @discordjs/ws underneath) against the simulator, on
// its own: readiness as Kurasuta and the pod see it, RESUME with a stored session (a restarted
// process), a resume asked for (the full buffer's replay), reconnects, resumes and re-identifies
// on each of Discord's faults, and the closes
// (and the token) Discord does not let it recover from.
import { SimpleIdentifyThrottler, type SessionInfo } from '@discordjs/ws';
import {
  EarClient,
  UnrecoverableGatewayError,
  type GatewayDispatch,
} from '../../bot/gateway/cluster/ear-client.js';
import { DiscordSimulator, messagePayload, type SimulatorOptions } from '../../discord-simulator/index.js';
import { waitUntil } from '../../testenv/index.js';

const GUILDS_AND_MESSAGES = (1 << 0) | (1 << 9);

let sim: DiscordSimulator;
const clients: EarClient[] = [];

const startSim = (gateway: SimulatorOptions['gateway'] = {}) =>
  DiscordSimulator.start({
    seed: 11,
    guilds: 30,
    gateway: { maxConcurrency: 2, identifyWindowMs: 1_000, ...gateway },
  });

/** For a test that needs the simulator configured otherwise. */
async function restartSim(gateway: SimulatorOptions['gateway']): Promise<void> {
  await sim.stop();
  sim = await startSim(gateway);
}

beforeEach(async () => {
  sim = await startSim();
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.destroy();
  await sim.stop();
});

interface Seen {
  events: string[];
  dispatches: GatewayDispatch[];
  sessions: Map<number, SessionInfo | null>;
}

/** An EarClient as Kurasuta builds it, recording what it emits; sessions kept in `sessions`. */
async function start(
  shards: number[],
  {
    sessions = new Map<number, SessionInfo | null>(),
    intents = GUILDS_AND_MESSAGES,
    token = sim.token,
    waitGuildTimeoutMs,
  }: {
    sessions?: Map<number, SessionInfo | null>;
    intents?: number;
    token?: string;
    waitGuildTimeoutMs?: number;
  } = {},
) {
  const client = new EarClient({
    intents,
    apiUrl: sim.apiUrl,
    waitGuildTimeoutMs,
    shards,
    shardCount: 2,
  });
  clients.push(client);
  const seen: Seen = { events: [], dispatches: [], sessions };
  client.on('dispatch', (d: GatewayDispatch, shardId: number) => {
    seen.dispatches.push(d);
    if (d.t === 'GUILD_CREATE') seen.events.push(`guild:${shardId}`);
  });
  client.on('ready', () => seen.events.push('ready'));
  client.on('shardReady', (id: number, unavailable?: Set<string>) =>
    seen.events.push(`shardReady:${id}${unavailable ? `:${unavailable.size} unavailable` : ''}`),
  );
  client.on('shardResume', (id: number, replayed: number) =>
    seen.events.push(`shardResume:${id}:${replayed}`),
  );
  client.on('shardReconnecting', (id: number) => seen.events.push(`shardReconnecting:${id}`));
  client.on('shardDisconnect', (e: { code: number }, id: number) =>
    seen.events.push(`shardDisconnect:${id}:${e.code}`),
  );
  await client.login(token, {
    identifyThrottler: new SimpleIdentifyThrottler(2),
    retrieveSessionInfo: async (id) => sessions.get(id) ?? null,
    updateSessionInfo: (id, info) => void sessions.set(id, info && { ...info }),
  });
  return { client, seen };
}

const until = (what: string, check: () => boolean) =>
  waitUntil(what, async () => check(), { timeoutMs: 30_000 });

const shardOf = (guildId: string) => Number((BigInt(guildId) >> 22n) % 2n);

function guildsOf(shardId: number): number {
  return [...sim.world.guilds.keys()].filter((id) => shardOf(id) === shardId).length;
}

const aGuildOf = (shardId: number) => [...sim.world.guilds.keys()].find((id) => shardOf(id) === shardId)!;

/** MESSAGE_CREATEs with these ids, to a guild of shard 0. */
function sendMessages(ids: string[]): void {
  const guildId = aGuildOf(0);
  const channelId = sim.world.firstChannelId(sim.world.guild(guildId)!);
  for (const id of ids)
    sim.dispatch('MESSAGE_CREATE', messagePayload({ id, guildId, channelId }), { guildId });
}

test('a shard is ready after READY and every guild it listed; `ready` once, after the last shard', async () => {
  const { seen } = await start([0, 1]);
  await until('ready', () => seen.events.includes('ready'));
  expect(seen.events.filter((e) => e === 'ready')).toHaveLength(1);
  expect(seen.events.at(-1)).toBe('ready');
  for (const shard of [0, 1]) {
    // No guild was given up on: the event has no "unavailable" part.
    const readyAt = seen.events.indexOf(`shardReady:${shard}`);
    expect(readyAt).toBeGreaterThan(-1);
    // Every guild of the shard came before its shardReady.
    expect(seen.events.slice(0, readyAt).filter((e) => e === `guild:${shard}`)).toHaveLength(guildsOf(shard));
  }
  // Every dispatch is handed on, READY included, parsed once (an object, not a string).
  expect(seen.dispatches.filter((d) => d.t === 'READY')).toHaveLength(2);
  expect(typeof seen.dispatches[0]!.d).toBe('object');
});

test('a dropped connection is reconnecting, then resumed with the dispatches it missed', async () => {
  const { seen } = await start([0]);
  await until('ready', () => seen.events.includes('ready'));
  expect(sim.fault(0, { kind: 'drop' })).toBe(1);
  sendMessages(['1001', '1002', '1003']);
  await until('resumed', () => seen.events.some((e) => e.startsWith('shardResume:0')));
  expect(seen.events.filter((e) => e.startsWith('shard') && !e.startsWith('shardReady'))).toEqual([
    'shardReconnecting:0',
    'shardResume:0:3',
  ]);
  expect(seen.dispatches.filter((d) => d.t === 'MESSAGE_CREATE')).toHaveLength(3);
});

test('resume(): the shard reconnects, HELLO first, and RESUMEs the session its hook answers then; Discord replays what followed it', async () => {
  const { client, seen } = await start([0]);
  await until('ready', () => seen.events.includes('ready'));
  client.on('shardHello', (id: number) => seen.events.push(`hello:${id}`));
  sendMessages(['3001', '3002', '3003']);
  const messages = () => seen.dispatches.filter((d) => d.t === 'MESSAGE_CREATE');
  await until('three messages', () => messages().length === 3);
  // The hook answers two dispatches back, as the gateway's does for those its buffer refused.
  const session = seen.sessions.get(0)!;
  seen.sessions.set(0, { ...session, sequence: session.sequence - 2 });
  await client.resume(0, 'test: replay the last two');
  await until('resumed', () => seen.events.some((e) => e.startsWith('shardResume:0')));
  expect(seen.events.filter((e) => !e.startsWith('guild') && !e.includes('eady'))).toEqual([
    'shardReconnecting:0',
    'hello:0',
    'shardResume:0:2',
  ]);
  expect(messages().map((d) => (d.d as { id: string }).id)).toEqual(['3001', '3002', '3003', '3002', '3003']);
  expect(sim.recorder.resumes.at(-1)).toMatchObject({
    shardId: 0,
    fromSeq: session.sequence - 2,
    replayed: 2,
  });
  expect(sim.recorder.identifies.filter((i) => !i.refused)).toHaveLength(1);
});

test('a new client with a stored session RESUMEs and is ready without a READY (a restarted process)', async () => {
  const first = await start([1]);
  await until('first ready', () => first.seen.events.includes('ready'));
  const stored = new Map(first.seen.sessions);
  await first.client.destroy();
  const second = await start([1], { sessions: stored });
  await until('second ready', () => second.seen.events.includes('ready'));
  expect(second.seen.events).toEqual(['shardResume:1:0', 'ready']);
  expect(second.seen.dispatches.map((d) => d.t)).toEqual(['RESUMED']);
  expect(sim.recorder.identifies.filter((i) => !i.refused)).toHaveLength(1);
});

test('a close Discord does not let a shard recover from is shardDisconnect, with its code, and final', async () => {
  const { seen } = await start([0, 1]);
  await until('ready', () => seen.events.includes('ready'));
  const sessionStarts = (shard: number) =>
    sim.recorder.identifies.filter((i) => i.shardId === shard).length +
    sim.recorder.resumes.filter((r) => r.shardId === shard).length;
  const shard0Starts = sessionStarts(0);
  expect(sim.fault(0, { kind: 'close', code: 4014 })).toBe(1);
  await until('disconnected', () => seen.events.includes('shardDisconnect:0:4014'));
  // Shard 1, dropped after it, resumes (after @discordjs/ws's reconnect delay, which shard 0
  // would have waited too): by then shard 0 has tried neither IDENTIFY nor RESUME.
  expect(sim.fault(1, { kind: 'drop' })).toBe(1);
  await until('shard 1 resumed', () => seen.events.some((e) => e.startsWith('shardResume:1')));
  expect(seen.events).not.toContain('shardReconnecting:0');
  expect(sessionStarts(0)).toBe(shard0Starts);
});

describe('Discord refusing the bot for good at login: login rejects, naming why', () => {
  test('a token Discord does not accept (GET /gateway/bot answers 401)', async () => {
    const login = start([0], { token: 'not-the-token' });
    await expect(login).rejects.toThrow(UnrecoverableGatewayError);
    await expect(login).rejects.toThrow('HTTP 401');
    expect(sim.recorder.identifies).toHaveLength(0);
  });

  test('intents the application may not use (close 4014 at IDENTIFY)', async () => {
    await restartSim({ enabledPrivilegedIntents: 0 });
    const GUILD_MEMBERS = 1 << 1;
    const login = start([0], { intents: GUILDS_AND_MESSAGES | GUILD_MEMBERS });
    await expect(login).rejects.toThrow(UnrecoverableGatewayError);
    await expect(login).rejects.toThrow(
      'shard 0: Discord closed the connection with 4014 (DisallowedIntents)',
    );
  });
});

describe('GET /gateway/bot at login (the one REST call)', () => {
  test('server errors and a rate limit are waited out: login goes on', async () => {
    sim.rateLimits.failNext('GET /gateway/bot', 502, { times: 2 });
    sim.rateLimits.force429('GET /gateway/bot', 300, { times: 1 });
    const { seen } = await start([0]);
    await until('ready', () => seen.events.includes('ready'));
    const calls = sim.recorder.restCalls.filter((r) => r.route === 'GET /gateway/bot');
    expect(calls.map((c) => c.status).sort()).toEqual([200, 429, 502, 502]);
  });

  test('nothing listening: retried, then login rejects naming the route, not the token', async () => {
    const { createServer } = await import('node:net');
    // A port just freed: connections to it are refused.
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    await new Promise((r) => server.close(r));
    const client = new EarClient({
      intents: 1,
      apiUrl: `http://127.0.0.1:${port}`,
      shards: [0],
      shardCount: 1,
    });
    clients.push(client);
    const login = client.login(sim.token, {
      identifyThrottler: new SimpleIdentifyThrottler(1),
      retrieveSessionInfo: async () => null,
      updateSessionInfo: () => undefined,
    });
    await expect(login).rejects.toThrow(/^GET \/gateway\/bot: fetch failed$/);
    await expect(login).rejects.not.toThrow(sim.token);
  });
});

describe("Discord's other faults: the shard recovers, and readiness follows", () => {
  test('a zombie connection (no heartbeat ACK) is closed, then resumed', async () => {
    // A short heartbeat interval, so the missed ACK is noticed soon.
    await restartSim({ heartbeatIntervalMs: 2_000 });
    const { seen } = await start([0]);
    await until('ready', () => seen.events.includes('ready'));
    expect(sim.fault(0, { kind: 'ignore-heartbeats' })).toBe(1);
    await until('resumed', () => seen.events.some((e) => e.startsWith('shardResume:0')));
    expect(seen.events.filter((e) => /^shardRe(connecting|sume)/.test(e))).toEqual([
      'shardReconnecting:0',
      'shardResume:0:0',
    ]);
  });

  test('RECONNECT (op 7): resumed, and what was sent meanwhile replayed and counted', async () => {
    const { seen } = await start([0]);
    await until('ready', () => seen.events.includes('ready'));
    expect(sim.fault(0, { kind: 'reconnect' })).toBe(1);
    sendMessages(['2001', '2002']);
    await until('two messages', () => seen.dispatches.filter((d) => d.t === 'MESSAGE_CREATE').length === 2);
    await until('resumed', () => seen.events.some((e) => e.startsWith('shardResume:0')));
    const resume = seen.events.find((e) => e.startsWith('shardResume:0'))!;
    // Whichever messages the old connection did not deliver were replayed before RESUMED.
    const replayed = Number(resume.split(':')[2]);
    expect(replayed).toBe(sim.recorder.resumes.at(-1)!.replayed);
  });

  test('a non-resumable INVALID_SESSION: the session is forgotten, the shard identifies again and is ready', async () => {
    const { seen } = await start([0]);
    await until('ready', () => seen.events.includes('ready'));
    const firstSession = seen.sessions.get(0)!.sessionId;
    expect(sim.fault(0, { kind: 'invalid-session', resumable: false })).toBe(1);
    await until('ready again', () => seen.events.filter((e) => e === 'shardReady:0').length === 2);
    expect(seen.events.filter((e) => e.startsWith('shardReconnecting:0'))).toHaveLength(1);
    expect(seen.sessions.get(0)?.sessionId).toBeDefined();
    expect(seen.sessions.get(0)!.sessionId).not.toBe(firstSession);
    expect(sim.recorder.identifies.filter((i) => i.shardId === 0 && !i.refused)).toHaveLength(2);
  });
});

test('guilds READY listed that never come: the shard is ready after the wait, naming them unavailable', async () => {
  sim.gateway.guildOutage(aGuildOf(0));
  const { seen } = await start([0], { waitGuildTimeoutMs: 500 });
  await until('ready', () => seen.events.includes('ready'));
  expect(seen.events.filter((e) => e.startsWith('shardReady'))).toEqual(['shardReady:0:1 unavailable']);
});

test('after destroy() nothing is emitted, and the sessions are forgotten', async () => {
  sim.gateway.guildOutage(aGuildOf(0));
  // A long guild wait still pending at destroy(): its timer must not fire shardReady later.
  const { client, seen } = await start([0], { waitGuildTimeoutMs: 60_000 });
  await until('READY', () => seen.dispatches.some((d) => d.t === 'READY'));
  const emitted = seen.events.length;
  await client.destroy();
  expect(seen.events).toHaveLength(emitted);
  expect(seen.sessions.get(0)).toBeNull();
});

test("Kurasuta's broadcastEval is refused, saying so", () => {
  const client = new EarClient({ intents: 1, apiUrl: sim.apiUrl, shards: [0], shardCount: 1 });
  expect(() => client._eval()).toThrow('EarClient does not evaluate code (broadcastEval is unsupported');
});

test('without the Guilds intent no GUILD_CREATE comes: a shard is ready at READY, its guilds unavailable', async () => {
  const { seen } = await start([0], { intents: 1 << 9 });
  await until('ready', () => seen.events.includes('ready'));
  expect(seen.events).toEqual([`shardReady:0:${guildsOf(0)} unavailable`, 'ready']);
});
