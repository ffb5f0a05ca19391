// The Ear's receive path: @discordjs/ws's shards (connection, heartbeats, IDENTIFY/RESUME,
// reconnects) with dispatches taken off before its parser. A text frame is read once
// (dispatch-frame.ts) and a dispatch handed on at once with its `d` as received, its sequence
// recorded in the session; @discordjs/ws's own path (a JSON.parse, three awaits and two event
// emitters per frame) keeps the frames whose state it owns: HELLO, heartbeats, READY, RESUMED,
// INVALID_SESSION, RECONNECT, compressed frames, and anything this path does not read.
// Order: a dispatch left to @discordjs/ws is emitted a few microtasks after its frame arrived,
// so the frames behind it wait until it is, and every dispatch still leaves in arrival order.
// Frames that cannot emit a dispatch (HELLO, heartbeats, RECONNECT, INVALID_SESSION) hold
// nothing: their handling may wait for seconds (a heartbeat's jitter, a new connection).
// It replaces a private method of @discordjs/ws's WebSocketShard (`onMessage`), pinned with the
// package's exact version; loading this module fails at once, naming it, if the method is gone.
import {
  managerToFetchingStrategyOptions,
  SimpleContextFetchingStrategy,
  SimpleShardingStrategy,
  WebSocketShard,
  WebSocketShardEvents,
  type WebSocketManager,
} from '@discordjs/ws';
import { readFrame, type GatewayFrame } from './dispatch-frame.js';

type ReceiveFrame = (this: WebSocketShard, data: unknown, isBinary: boolean) => Promise<void>;

const parseFrame = (WebSocketShard.prototype as unknown as { onMessage?: ReceiveFrame }).onMessage;
if (typeof parseFrame !== 'function')
  throw new Error(
    "@discordjs/ws's WebSocketShard has no onMessage: the Ear's receive path needs the @discordjs/ws version in package.json",
  );

/** Dispatches @discordjs/ws must see: its session state changes with them. */
const PARSED_DISPATCHES = new Set(['READY', 'RESUMED']);
const GATEWAY_DISPATCH = 0;
const DONE = Promise.resolve();

/** The op of a text frame the reader declined (rare: JSON.parse reads it again after this). */
function opOf(data: unknown): unknown {
  try {
    return (JSON.parse(data as string) as { op?: unknown } | null)?.op;
  } catch {
    return undefined;
  }
}

/** Where dispatches taken off the receive path go. */
export interface DispatchSink {
  /** A dispatch's sequence, before the dispatch itself (what @discordjs/ws records per dispatch). */
  sequence(shardId: number, seq: number): void;
  dispatch(frame: GatewayFrame & { t: string; s: number }, shardId: number): void;
}

class RawDispatchShard extends WebSocketShard {
  /** Settles once the dispatch @discordjs/ws is still emitting, and the frames queued behind it, are handed on. */
  private behind?: Promise<void>;

  constructor(
    strategy: ConstructorParameters<typeof WebSocketShard>[0],
    id: number,
    private readonly sink: DispatchSink,
  ) {
    super(strategy, id);
  }

  /** What the connection calls for every frame (in place of @discordjs/ws's onMessage). */
  receive(data: unknown, isBinary: boolean): Promise<void> {
    if (!this.behind) {
      const left = this.take(data, isBinary);
      if (!left) return DONE;
      if (left.mayDispatch) this.hold(left.handled);
      return left.handled;
    }
    // Queued behind a dispatch @discordjs/ws is still emitting. The queue waits for this frame's
    // own handling only if it may emit a dispatch: a HELLO's heartbeat jitter, or a RECONNECT's
    // wait for the new connection's HELLO (which would queue behind it), must not hold it.
    const run = this.behind.then(() => {
      const left = this.take(data, isBinary);
      return left?.mayDispatch ? left.handled : undefined;
    });
    this.hold(run);
    return run;
  }

  /** Hands a dispatch on (undefined), or the frame to @discordjs/ws. */
  private take(
    data: unknown,
    isBinary: boolean,
  ): { handled: Promise<void>; mayDispatch: boolean } | undefined {
    const frame = !isBinary && typeof data === 'string' ? readFrame(data) : undefined;
    if (frame && this.forward(frame)) return undefined;
    return {
      handled: parseFrame!.call(this, data, isBinary),
      // Compressed frames all take @discordjs/ws's path, in order: nothing to hold.
      mayDispatch: !isBinary && (frame ? frame.op === GATEWAY_DISPATCH : opOf(data) === GATEWAY_DISPATCH),
    };
  }

  private forward(frame: GatewayFrame): boolean {
    const { t, s } = frame;
    if (frame.op !== GATEWAY_DISPATCH || t === null || s === null || PARSED_DISPATCHES.has(t)) return false;
    this.sink.sequence(this.id, s);
    this.sink.dispatch(frame as GatewayFrame & { t: string; s: number }, this.id);
    return true;
  }

  private hold(done: Promise<void>): void {
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.behind = settled;
    void settled.then(() => {
      if (this.behind === settled) this.behind = undefined;
    });
  }
}
Object.defineProperty(RawDispatchShard.prototype, 'onMessage', {
  value: RawDispatchShard.prototype.receive,
  writable: true,
  configurable: true,
});

/**
 * @discordjs/ws's SimpleShardingStrategy with shards whose dispatches go to `sink`: its spawn, with
 * this file's shard (it keeps them in its private `shards`, which its connect and destroy use).
 */
export class RawDispatchStrategy extends SimpleShardingStrategy {
  constructor(
    private readonly wsManager: WebSocketManager,
    private readonly sink: DispatchSink,
  ) {
    super(wsManager);
  }

  override async spawn(shardIds: number[]): Promise<void> {
    const options = await managerToFetchingStrategyOptions(this.wsManager);
    const shards = (this as unknown as { shards: Map<number, WebSocketShard> }).shards;
    const relay = this.wsManager.emit.bind(this.wsManager) as (event: string, ...args: unknown[]) => boolean;
    for (const shardId of shardIds) {
      const context = new SimpleContextFetchingStrategy(this.wsManager, options);
      const shard = new RawDispatchShard(context, shardId, this.sink);
      const on = shard.on.bind(shard) as (event: string, listener: (...args: unknown[]) => void) => unknown;
      for (const event of Object.values(WebSocketShardEvents))
        on(event, (...args) => relay(event, ...args, shardId));
      shards.set(shardId, shard);
    }
  }
}
