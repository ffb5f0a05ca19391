// What the forwarder does when its buffer is full: it refuses the dispatch and leaves it with
// Discord, which replays it when the shard RESUMEs from before it. Nothing is dropped while the
// session can be resumed.
// - From a shard's first refusal on, everything that shard sends on that connection is refused
//   too, room or not: accepting a later dispatch would run it before the earlier one it
//   overtook (a guild's events run in order).
// - The shard's resumable sequence stays just before its first refused dispatch: in the session
//   the gateway stores (a process that dies meanwhile leaves it to whoever resumes), and in the
//   session the shard's own next RESUME sends.
// - Once the buffer has room again, the forwarder asks the shard to reconnect and resume.
//   Discord replays from the first refused dispatch. The replay's dispatches this process
//   already took (sequence below the first refused) are skipped here, so no second copy is
//   queued.
// - A shard that could not resume (Discord invalidated the session, or it expired while Redis
//   was away) identifies again, and what it had refused is lost: counted by type, logged. (A
//   lower bound: frames of the old connection cut off when it was closed are not counted.)
// Pure bookkeeping; the forwarder (dispatch-forwarder.ts) acts on its answers.

/** What the forwarder does with one dispatch. */
export type Admission =
  /** Into the buffer. */
  | 'accept'
  /** Left to Discord's replay (counted as overflow). */
  | 'refuse'
  /** A replay of a dispatch this process already took: not buffered a second time. */
  | 'skip';

/** A shard whose dispatches are being refused, from `firstRefused` on, in session `sessionId`. */
interface Behind {
  sessionId: string | undefined;
  firstRefused: number;
  /** The highest sequence refused: a replay refused again is not counted twice. */
  lastRefused: number;
  /** Refused dispatches by type (each sequence once): what is lost if the session is. */
  refusedByType: Map<string, number>;
  /** A connection opened after the refusals began: its dispatches are the replay. */
  reconnected: boolean;
  /** The forwarder asked the shard to resume, and it has not reconnected since. */
  resumeAsked: boolean;
}

/** Dispatches that are gone for good: their session could not be resumed, or Discord skipped them. */
export interface LostDispatches {
  shardId: number;
  sessionId: string | undefined;
  firstRefused: number;
  byType: Map<string, number>;
  reason: 'session_not_resumed' | 'replay_gap';
}

export class OverflowReplays {
  private readonly behind = new Map<number, Behind>();

  constructor(private readonly onLost: (lost: LostDispatches) => void) {}

  /** Shards refusing dispatches now. */
  get size(): number {
    return this.behind.size;
  }

  /**
   * The shard's current session (undefined: none). Another than the refusals' means their
   * replay will never come: they are lost.
   */
  session(shardId: number, sessionId: string | undefined): void {
    const b = this.behind.get(shardId);
    if (!b || b.sessionId === sessionId) return;
    this.behind.delete(shardId);
    this.onLost({ ...this.lostOf(shardId, b), reason: 'session_not_resumed' });
  }

  /** Decides one dispatch of `shardId`; `full`: the buffer has no room for it. */
  admit(shardId: number, type: string, seq: number, sessionId: string | undefined, full: boolean): Admission {
    // The forwarder reports session changes as they happen; checked here too, since a dispatch
    // of another session taken for the replay would be skipped (its sequences start again).
    this.session(shardId, sessionId);
    const b = this.behind.get(shardId);
    if (!b) {
      if (!full) return 'accept';
      this.behind.set(shardId, {
        sessionId,
        firstRefused: seq,
        lastRefused: seq,
        refusedByType: new Map([[type, 1]]),
        reconnected: false,
        resumeAsked: false,
      });
      return 'refuse';
    }
    if (b.reconnected && seq < b.firstRefused) return 'skip';
    if (!b.reconnected || full) {
      // Refused again on the replay: wait for room and resume again, from the same place.
      if (b.reconnected) b.reconnected = b.resumeAsked = false;
      if (seq > b.lastRefused) {
        b.lastRefused = seq;
        b.refusedByType.set(type, (b.refusedByType.get(type) ?? 0) + 1);
      }
      return 'refuse';
    }
    this.behind.delete(shardId);
    if (seq > b.firstRefused)
      // Not expected of Discord: the replay began after what was refused. The sequences
      // skipped are counted, of whatever type (unconfigured ones too): which is not known.
      this.onLost({
        ...this.lostOf(shardId, b),
        byType: new Map([['unknown', seq - b.firstRefused]]),
        reason: 'replay_gap',
      });
    return 'accept';
  }

  /** Asking the shard to resume failed: ask again at the next chance. */
  resumeFailed(shardId: number): void {
    const b = this.behind.get(shardId);
    if (b) b.resumeAsked = false;
  }

  /** The shard opened a new connection: what comes on it is Discord's replay, then live events. */
  connected(shardId: number): void {
    const b = this.behind.get(shardId);
    if (!b) return;
    b.reconnected = true;
    b.resumeAsked = false;
  }

  /** The highest sequence a session of the shard may resume from (Infinity: no bound). */
  resumeBound(shardId: number): number {
    const b = this.behind.get(shardId);
    return b ? b.firstRefused - 1 : Infinity;
  }

  /** The shards to ask to resume now (each once until it reconnects). */
  takeResumes(): number[] {
    const out: number[] = [];
    for (const [shardId, b] of this.behind)
      if (!b.reconnected && !b.resumeAsked) {
        b.resumeAsked = true;
        out.push(shardId);
      }
    return out;
  }

  private lostOf(shardId: number, b: Behind): Omit<LostDispatches, 'reason'> {
    return { shardId, sessionId: b.sessionId, firstRefused: b.firstRefused, byType: b.refusedByType };
  }
}
