// How payloads reach one gateway connection: as text, or with the transport compression the
// client asked for in its URL, as Discord offers it: `compress=zlib-stream` (one zlib context for
// the connection, each payload flushed with Z_SYNC_FLUSH so it ends in 00 00 ff ff) or
// `compress=zstd-stream` (one zstd context, each payload a flushed frame part), sent as binary
// messages. A compressed payload waits for the one before it, so they leave in order, and a
// close waits for the payloads sent before it.
import zlib from 'node:zlib';
import type { WebSocket } from 'ws';

export const TRANSPORT_COMPRESSIONS = ['zlib-stream', 'zstd-stream'] as const;
export type TransportCompression = (typeof TRANSPORT_COMPRESSIONS)[number];

export interface Transport {
  send(payload: string): void;
  close(code: number, reason: string): void;
}

export function isTransportCompression(value: string): value is TransportCompression {
  return (TRANSPORT_COMPRESSIONS as readonly string[]).includes(value);
}

export function createTransport(ws: WebSocket, compression: TransportCompression | undefined): Transport {
  if (!compression) {
    return {
      send: (payload) => {
        if (ws.readyState === ws.OPEN) ws.send(payload);
      },
      close: (code, reason) => ws.close(code, reason),
    };
  }
  return new CompressedTransport(ws, compression);
}

class CompressedTransport implements Transport {
  private readonly stream: zlib.Deflate | zlib.ZstdCompress;
  private readonly flushKind: number;
  private readonly output: Buffer[] = [];
  private readonly pending: string[] = [];
  private busy = false;
  private closing?: { code: number; reason: string };

  constructor(
    private readonly ws: WebSocket,
    compression: TransportCompression,
  ) {
    if (compression === 'zlib-stream') {
      this.stream = zlib.createDeflate();
      this.flushKind = zlib.constants.Z_SYNC_FLUSH;
    } else {
      this.stream = zlib.createZstdCompress();
      this.flushKind = zlib.constants.ZSTD_e_flush;
    }
    this.stream.on('data', (chunk: Buffer) => this.output.push(chunk));
    this.stream.on('error', () => ws.terminate());
    ws.once('close', () => this.stream.destroy());
  }

  send(payload: string): void {
    if (this.closing) return;
    this.pending.push(payload);
    if (!this.busy) this.next();
  }

  close(code: number, reason: string): void {
    this.closing ??= { code, reason };
    if (!this.busy) this.ws.close(code, reason);
  }

  /** Compresses the oldest pending payload; its flush callback sends it and starts the next. */
  private next(): void {
    const payload = this.pending.shift();
    if (payload === undefined) {
      this.busy = false;
      if (this.closing) this.ws.close(this.closing.code, this.closing.reason);
      return;
    }
    this.busy = true;
    this.stream.write(payload);
    this.stream.flush(this.flushKind, () => {
      const message = Buffer.concat(this.output.splice(0));
      if (this.ws.readyState === this.ws.OPEN) this.ws.send(message);
      this.next();
    });
  }
}
