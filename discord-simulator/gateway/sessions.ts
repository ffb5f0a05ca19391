// Gateway sessions outlive connections: a dropped connection leaves its session resumable,
// and dispatches for it are kept (bounded) so a RESUME can replay everything after a sequence.
import type { WebSocket } from 'ws';
import type { Transport } from './transport.js';

/** The live connection a session's dispatches go to. */
export interface SessionConnection {
  ws: WebSocket;
  transport: Transport;
}

export class Session {
  seq = 0;
  /** Serialized dispatch payloads; log[i] has sequence firstSeq + i. */
  private log: string[] = [];
  private firstSeq = 1;
  connection?: SessionConnection;
  invalidated = false;
  expiryTimer?: NodeJS.Timeout;

  constructor(
    readonly id: string,
    readonly shardId: number,
    readonly shardCount: number,
    readonly intents: number,
    readonly largeThreshold: number,
    private readonly logLimit: number,
  ) {}

  /** Appends a dispatch and returns its wire form. */
  push(type: string, dataJson: string): string {
    this.seq += 1;
    const payload = `{"op":0,"s":${this.seq},"t":"${type}","d":${dataJson}}`;
    this.log.push(payload);
    if (this.log.length > this.logLimit * 2) {
      // Trim in bulk so pushing stays O(1) amortised.
      const drop = this.log.length - this.logLimit;
      this.log = this.log.slice(drop);
      this.firstSeq += drop;
    }
    return payload;
  }

  /** Payloads after `seq`, or undefined if some of them were already trimmed. */
  after(seq: number): string[] | undefined {
    if (seq + 1 < this.firstSeq) return undefined;
    return this.log.slice(seq + 1 - this.firstSeq);
  }
}
