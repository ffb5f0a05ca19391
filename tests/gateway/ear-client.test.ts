// The cluster processes' client (EarClient, @discordjs/ws underneath) against the simulator, on
// its own: readiness as Kurasuta and the pod see it, RESUME with a stored session (a restarted
// process), reconnects and a close Discord does not let it recover from.
import { SimpleIdentifyThrottler, type SessionInfo } from '@discordjs/ws';
import { EarClient, type GatewayDispatch } from '../../bot/gateway/cluster/ear-client.js';
import { DiscordSimulator, messagePayload } from '../../discord-simulator/index.js';
import { waitUntil } from '../../testenv/index.js';

const GUILDS_AND_MESSAGES = (1 << 0) | (1 << 9);

let sim: DiscordSimulator;
const clients: EarClient[] = [];

beforeEach(async () => {
  sim = await DiscordSimulator.start({
    seed: 11,
    guilds: 30,
    gateway: { maxConcurrency: 2, identifyWindowMs: 1_000 },
  });
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
  sessions = new Map<number, SessionInfo | null>(),
  intents = GUILDS_AND_MESSAGES,
) {
  const client = new EarClient({
    intents,
    apiUrl: sim.apiUrl,
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
  await client.login(sim.token, {
    identifyThrottler: new SimpleIdentifyThrottler(2),
    retrieveSessionInfo: async (id) => sessions.get(id) ?? null,
    updateSessionInfo: (id, info) => void sessions.set(id, info && { ...info }),
  });
  return { client, seen };
}

const until = (what: string, check: () => boolean) =>
  waitUntil(what, async () => check(), { timeoutMs: 30_000 });

function guildsOf(shardId: number): number {
  return [...sim.world.guilds.keys()].filter((id) => Number((BigInt(id) >> 22n) % 2n) === shardId).length;
}

test('a shard is ready after READY and every guild it listed; `ready` once, after the last shard', async () => {
  const { seen } = await start([0, 1]);
  await until('ready', () => seen.events.includes('ready'));
  expect(seen.events.filter((e) => e === 'ready')).toHaveLength(1);
  expect(seen.events.at(-1)).toBe('ready');
  for (const shard of [0, 1]) {
    const readyAt = seen.events.indexOf(`shardReady:${shard}`);
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
  const guild = [...sim.world.guilds.keys()].find((id) => Number((BigInt(id) >> 22n) % 2n) === 0)!;
  const channelId = sim.world.firstChannelId(sim.world.guild(guild)!);
  expect(sim.fault(0, { kind: 'drop' })).toBe(1);
  for (const id of ['1001', '1002', '1003'])
    sim.dispatch('MESSAGE_CREATE', messagePayload({ id, guildId: guild, channelId }), { guildId: guild });
  await until('resumed', () => seen.events.some((e) => e.startsWith('shardResume:0')));
  expect(seen.events.filter((e) => e.startsWith('shard') && !e.startsWith('shardReady'))).toEqual([
    'shardReconnecting:0',
    'shardResume:0:3',
  ]);
  expect(seen.dispatches.filter((d) => d.t === 'MESSAGE_CREATE')).toHaveLength(3);
});

test('a new client with a stored session RESUMEs and is ready without a READY (a restarted process)', async () => {
  const first = await start([1]);
  await until('first ready', () => first.seen.events.includes('ready'));
  const stored = new Map(first.seen.sessions);
  await first.client.destroy();
  const second = await start([1], stored);
  await until('second ready', () => second.seen.events.includes('ready'));
  expect(second.seen.events).toEqual(['shardResume:1:0', 'ready']);
  expect(second.seen.dispatches.map((d) => d.t)).toEqual(['RESUMED']);
  expect(sim.recorder.identifies.filter((i) => !i.refused)).toHaveLength(1);
});

test('a close Discord does not let a shard recover from is shardDisconnect, with its code', async () => {
  const { seen } = await start([0]);
  await until('ready', () => seen.events.includes('ready'));
  expect(sim.fault(0, { kind: 'close', code: 4014 })).toBe(1);
  await until('disconnected', () => seen.events.includes('shardDisconnect:0:4014'));
  expect(seen.events).not.toContain('shardReconnecting:0');
});

test('without the Guilds intent no GUILD_CREATE comes: a shard is ready at READY, its guilds unavailable', async () => {
  const { seen } = await start([0], undefined, 1 << 9);
  await until('ready', () => seen.events.includes('ready'));
  expect(seen.events).toEqual([`shardReady:0:${guildsOf(0)} unavailable`, 'ready']);
});
