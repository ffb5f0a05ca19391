// What the simulator saw, for tests and benchmarks to read back.
export interface IdentifyRecord {
  at: number;
  shardId: number;
  shardCount: number;
  bucket: number;
  intents: number;
  sessionId?: string;
  /** Why the identify was refused, if it was. */
  refused?: string;
}

export interface ResumeRecord {
  at: number;
  shardId: number;
  sessionId: string;
  fromSeq: number;
  replayed: number;
}

export interface RestCallRecord {
  at: number;
  method: string;
  path: string;
  /** Route template, e.g. PUT /guilds/:guild_id/members/:user_id/roles/:role_id. */
  route: string;
  status: number;
  body?: unknown;
  /** Which of the simulator's tokens authorised the call (index into `tokens`), if any. */
  tokenIndex?: number;
}

export type ViolationKind =
  | 'identify-concurrency'
  | 'session-start-limit'
  | 'gateway-rate-limit'
  | 'rest-rate-limit'
  | 'interaction-late'
  | 'interaction-twice';

export interface ViolationRecord {
  at: number;
  kind: ViolationKind;
  shardId?: number;
  detail: string;
}

export interface InteractionResponseRecord {
  at: number;
  interactionId: string;
  kind: 'callback' | 'followup' | 'edit-original';
  type?: number;
  data: unknown;
  /** Milliseconds from INTERACTION_CREATE being sent to this response arriving. */
  latencyMs: number;
}

export class Recorder {
  identifies: IdentifyRecord[] = [];
  resumes: ResumeRecord[] = [];
  restCalls: RestCallRecord[] = [];
  violations: ViolationRecord[] = [];
  interactionResponses: InteractionResponseRecord[] = [];
  closes: { at: number; shardId?: number; code: number; by: 'server' | 'client'; reason: string }[] = [];
  counters = {
    connections: 0,
    dispatchesSent: 0,
    /** Dispatches for a shard that had no live or resumable session. */
    dispatchesUndelivered: 0,
    /** Dispatches withheld because the session lacked the intent. */
    dispatchesFilteredByIntent: 0,
    payloadsReceived: 0,
    heartbeats: 0,
    restRequests: 0,
    rest429: 0,
    restInvalid: 0,
  };

  violation(kind: ViolationKind, detail: string, shardId?: number): void {
    this.violations.push({ at: Date.now(), kind, detail, shardId });
  }

  reset(): void {
    this.identifies = [];
    this.resumes = [];
    this.restCalls = [];
    this.violations = [];
    this.interactionResponses = [];
    this.closes = [];
    for (const k of Object.keys(this.counters) as (keyof Recorder['counters'])[]) this.counters[k] = 0;
  }
}
