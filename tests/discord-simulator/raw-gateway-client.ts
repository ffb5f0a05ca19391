// A bare WebSocket gateway client for protocol tests: no library logic between the test and
// the simulator, so every opcode and close code is visible.
import WebSocket from 'ws';

export interface Payload {
  op: number;
  d: unknown;
  s: number | null;
  t: string | null;
}

export class RawGatewayClient {
  readonly received: Payload[] = [];
  private waiters: { match: (p: Payload) => boolean; resolve: (p: Payload) => void }[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const p = JSON.parse(data.toString()) as Payload;
      this.received.push(p);
      this.waiters = this.waiters.filter((w) => (w.match(p) ? (w.resolve(p), false) : true));
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static async connect(gatewayUrl: string, query = '?v=10&encoding=json'): Promise<RawGatewayClient> {
    const ws = new WebSocket(gatewayUrl + query);
    const client = new RawGatewayClient(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return client;
  }

  send(op: number, d: unknown): void {
    this.ws.send(JSON.stringify({ op, d }));
  }

  identify(token: string, shard: [number, number] = [0, 1], intents = 1): void {
    this.send(2, { token, intents, shard, properties: { os: 'linux', browser: 'test', device: 'test' } });
  }

  /** The first payload (already received or future) that matches. */
  next(match: (p: Payload) => boolean, timeoutMs = 5_000): Promise<Payload> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a gateway payload')), timeoutMs);
      this.waiters.push({ match, resolve: (p) => (clearTimeout(timer), resolve(p)) });
    });
  }

  dispatch(type: string, timeoutMs?: number): Promise<Payload> {
    return this.next((p) => p.op === 0 && p.t === type, timeoutMs);
  }

  close(code = 1000): void {
    this.ws.close(code);
  }
}
