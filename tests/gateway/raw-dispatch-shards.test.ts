// The receive path in a real connection (EarClient over @discordjs/ws and ws), against a gateway
// of this test's own that writes several frames in one TCP write, so ws hands them to the shard
// in the same tick: the cases the simulator does not make deterministic. Dispatches leave in
// arrival order across the frames @discordjs/ws still parses (READY, a frame the reader declines);
// a control frame queued behind one (RECONNECT) holds nothing, so the new connection's HELLO is
// not stuck behind it; sequences reach the session store before their dispatch.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { SimpleIdentifyThrottler, type SessionInfo } from '@discordjs/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { EarClient, type GatewayDispatch } from '../../bot/gateway/cluster/ear-client.js';
import { RawPayload } from '../../bot/gateway/receiving/dispatch-frame.js';
import { waitUntil } from '../../testenv/index.js';

/** A server-to-client text frame (unmasked), as ws would write it. */
function wsFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const header =
    payload.length < 126
      ? Buffer.from([0x81, payload.length])
      : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([header, payload]);
}

interface Gateway {
  apiUrl: string;
  /** What the gateway answers to an IDENTIFY (frames, written at once) and to a RESUME. */
  onIdentify: (url: string) => string[];
  onResume: (url: string) => string[];
  connections: number;
  close(): Promise<void>;
}

async function startGateway(): Promise<Gateway> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const server: Server = createServer((req, res) => {
    const { port } = server.address() as { port: number };
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        url: `ws://127.0.0.1:${port}`,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
  const gateway: Gateway = {
    apiUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    onIdentify: () => [],
    onResume: () => [],
    connections: 0,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((r) => server.close(r));
    },
  };
  const writeAtOnce = (ws: WebSocket, frames: string[]) =>
    (ws as unknown as { _socket: Socket })._socket.write(Buffer.concat(frames.map(wsFrame)));
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      gateway.connections++;
      ws.send('{"op":10,"d":{"heartbeat_interval":45000},"s":null,"t":null}');
      ws.on('message', (data) => {
        const { op } = JSON.parse(String(data)) as { op: number };
        if (op === 1) ws.send('{"op":11,"d":null,"s":null,"t":null}');
        if (op === 2) writeAtOnce(ws, gateway.onIdentify(url));
        if (op === 6) writeAtOnce(ws, gateway.onResume(url));
      });
    }),
  );
  return gateway;
}

const dispatch = (s: number, t: string, d: unknown) => JSON.stringify({ t, s, op: 0, d });
const ready = (url: string, guildIds: string[]) =>
  dispatch(1, 'READY', {
    v: 10,
    session_id: 'abc',
    resume_gateway_url: url,
    guilds: guildIds.map((id) => ({ id, unavailable: true })),
    user: { id: '1', username: 'bot' },
    application: { id: '1', flags: 0 },
  });

let gateway: Gateway;
let client: EarClient | undefined;
beforeEach(async () => {
  gateway = await startGateway();
});
afterEach(async () => {
  await client?.destroy();
  client = undefined;
  await gateway.close();
});

async function login() {
  const sessions = new Map<number, SessionInfo | null>();
  const seen: { dispatches: GatewayDispatch[]; sequenceAtDispatch: number[]; events: string[] } = {
    dispatches: [],
    sequenceAtDispatch: [],
    events: [],
  };
  client = new EarClient({ intents: 1 | 512, apiUrl: gateway.apiUrl, shards: [0], shardCount: 1 });
  client.on('dispatch', (d) => {
    seen.dispatches.push(d);
    seen.sequenceAtDispatch.push(sessions.get(0)?.sequence ?? -1);
  });
  client.on('shardReady', (id, unavailable) => seen.events.push(`ready:${id}:${unavailable?.size ?? 0}`));
  client.on('shardResume', (id) => seen.events.push(`resume:${id}`));
  client.on('shardReconnecting', (id) => seen.events.push(`reconnecting:${id}`));
  await client.login('token', {
    identifyThrottler: new SimpleIdentifyThrottler(1),
    retrieveSessionInfo: async (id) => sessions.get(id) ?? null,
    updateSessionInfo: (id, info) => void sessions.set(id, info && { ...info }),
    advanceSequence: (id, seq) => {
      const info = sessions.get(id);
      if (info && seq > info.sequence) info.sequence = seq;
    },
  });
  return { seen, sessions };
}

test('frames of one read leave in order across READY and a frame the reader declines, sequences first', async () => {
  gateway.onIdentify = (url) => [
    ready(url, ['10']),
    dispatch(2, 'GUILD_CREATE', { id: '10', name: 'g' }),
    dispatch(3, 'MESSAGE_CREATE', { id: '100', channel_id: '5', guild_id: '10' }),
    // Whitespace between tokens: declined, parsed by @discordjs/ws, and still in its place.
    '{"op":0, "s":4, "t":"MESSAGE_CREATE", "d":{"id":"101"}}',
    dispatch(5, 'MESSAGE_CREATE', { id: '102', channel_id: '5', guild_id: '10' }),
  ];
  const { seen, sessions } = await login();
  expect(seen.events).toEqual(['ready:0:0']);
  await waitUntil('five dispatches', async () => seen.dispatches.length === 5, { timeoutMs: 30_000 });
  expect(seen.dispatches.map((d) => `${d.s}:${d.t}`)).toEqual([
    '1:READY',
    '2:GUILD_CREATE',
    '3:MESSAGE_CREATE',
    '4:MESSAGE_CREATE',
    '5:MESSAGE_CREATE',
  ]);
  // READY and the declined frame as @discordjs/ws parsed them; the rest as received.
  expect(seen.dispatches.map((d) => d.d instanceof RawPayload)).toEqual([false, true, true, false, true]);
  expect((seen.dispatches[2]!.d as RawPayload).id).toBe('100');
  // Each dispatch's sequence is in the session store before the dispatch is emitted.
  expect(seen.sequenceAtDispatch.slice(1)).toEqual([2, 3, 4, 5]);
  expect(sessions.get(0)?.sequence).toBe(5);
});

test('a RECONNECT in the same read as READY holds nothing: the shard resumes on its new connection', async () => {
  gateway.onIdentify = (url) => [ready(url, []), '{"op":7,"d":null,"s":null,"t":null}'];
  gateway.onResume = () => [
    dispatch(2, 'MESSAGE_CREATE', { id: '200', channel_id: '5' }),
    dispatch(3, 'RESUMED', {}),
  ];
  const { seen } = await login();
  // @discordjs/ws waits up to 60 s for the new connection's HELLO: queued behind the RECONNECT,
  // it would arrive only after that wait.
  await waitUntil('resumed', async () => seen.events.includes('resume:0'), { timeoutMs: 30_000 });
  expect(gateway.connections).toBe(2);
  expect(seen.dispatches.map((d) => `${d.s}:${d.t}`)).toEqual(['1:READY', '2:MESSAGE_CREATE', '3:RESUMED']);
});
