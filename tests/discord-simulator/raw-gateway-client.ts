// A bare WebSocket gateway client for protocol tests: no library logic between the test and
// the simulator, so every opcode and close code is visible.
import zlib from 'node:zlib';
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
  /** The binary messages as they came, when the connection asked for transport compression. */
  readonly compressedMessages: Buffer[] = [];
  private constructor(
    readonly ws: WebSocket,
    compress: string | null,
  ) {
    const decode = decoder(compress, (text) => {
      const p = JSON.parse(text) as Payload;
      this.received.push(p);
      this.waiters = this.waiters.filter((w) => (w.match(p) ? (w.resolve(p), false) : true));
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) this.compressedMessages.push(data);
      decode(data);
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static async connect(gatewayUrl: string, query = '?v=10&encoding=json'): Promise<RawGatewayClient> {
    const ws = new WebSocket(gatewayUrl + query);
    const client = new RawGatewayClient(ws, new URLSearchParams(query).get('compress'));
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
  /** `timeoutMs` only bounds a wait for something that never comes; a loaded machine stays well inside it. */
  next(match: (p: Payload) => boolean, timeoutMs = 30_000): Promise<Payload> {
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

/**
 * Undoes the gateway's transport compression (`zlib-stream`, `zstd-stream`): one decompression
 * context for the connection, each message flushed through it in order.
 */
function decoder(compress: string | null, onText: (text: string) => void): (data: Buffer) => void {
  if (!compress) return (data) => onText(data.toString());
  const zstd = compress === 'zstd-stream';
  const stream = zstd ? zlib.createZstdDecompress() : zlib.createInflate();
  const kind = zstd ? zlib.constants.ZSTD_e_flush : zlib.constants.Z_SYNC_FLUSH;
  const out: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => out.push(chunk));
  let chain = Promise.resolve();
  return (data) => {
    chain = chain.then(
      () =>
        new Promise<void>((resolve) => {
          stream.write(data);
          stream.flush(kind, () => {
            onText(Buffer.concat(out.splice(0)).toString());
            resolve();
          });
        }),
    );
  };
}
