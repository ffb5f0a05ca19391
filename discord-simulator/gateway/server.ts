// The gateway (API v10, JSON encoding): HELLO/heartbeats, IDENTIFY with Discord's shard,
// intent and identify-rate rules, RESUME with replay, close codes, injected faults.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { SeededRandom } from '../random.js';
import type { Recorder } from '../recorder.js';
import { shardOfGuild } from '../snowflake.js';
import type { World } from '../world.js';
import { ALL_INTENTS, PRIVILEGED_INTENTS, requiredIntent } from './intents.js';
import { Session, type SessionConnection } from './sessions.js';
import { createTransport, isTransportCompression, TRANSPORT_COMPRESSIONS } from './transport.js';
import { guildCreatePayload, readyPayload } from './payloads.js';
import { planMemberChunks, type RequestGuildMembers } from './members.js';

export const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  VoiceStateUpdate: 4,
  Resume: 6,
  Reconnect: 7,
  RequestGuildMembers: 8,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
} as const;

export const CloseCode = {
  UnknownError: 4000,
  UnknownOpcode: 4001,
  DecodeError: 4002,
  NotAuthenticated: 4003,
  AuthenticationFailed: 4004,
  AlreadyAuthenticated: 4005,
  InvalidSeq: 4007,
  RateLimited: 4008,
  SessionTimedOut: 4009,
  InvalidShard: 4010,
  ShardingRequired: 4011,
  InvalidAPIVersion: 4012,
  InvalidIntents: 4013,
  DisallowedIntents: 4014,
} as const;

export type GatewayFault =
  | { kind: 'reconnect' }
  | { kind: 'invalid-session'; resumable: boolean }
  | { kind: 'drop' }
  | { kind: 'ignore-heartbeats' }
  | { kind: 'request-heartbeat' }
  | { kind: 'close'; code: number };

export interface GatewayOptions {
  heartbeatIntervalMs: number;
  identifyWindowMs: number;
  maxConcurrency: number;
  sessionStartTotal: number;
  sessionStartResetMs: number;
  /** How long a session without a connection stays resumable. */
  sessionTtlMs: number;
  /** Dispatches kept per session for RESUME replay. */
  replayLimit: number;
  /** Payloads a client may send per window before 4008 (Discord: 120 per 60 s). */
  payloadLimit: number;
  payloadWindowMs: number;
  /** More guilds than this on one shard: 4011 sharding required (Discord: 2,500). */
  maxGuildsPerShard: number;
  /** Privileged intents the application has enabled. */
  enabledPrivilegedIntents: number;
}

interface ConnectionState extends SessionConnection {
  session?: Session;
  lastHeartbeat: number;
  zombieTimer?: NodeJS.Timeout;
  ignoreHeartbeats: boolean;
  payloadTimes: number[];
}

export class GatewayServer {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly connections = new Set<ConnectionState>();
  /** Live and resumable sessions, by id. */
  readonly sessions = new Map<string, Session>();
  /** shardCount → shardId → sessions, to route a guild's dispatch without scanning. */
  private readonly byShard = new Map<number, Map<number, Set<Session>>>();
  private readonly bucketLastIdentify = new Map<number, number>();
  private sessionStarts = { remaining: 0, resetAt: 0 };
  /** Guilds in an outage: READY lists them (unavailable, as all), no GUILD_CREATE follows. */
  private readonly guildsInOutage = new Set<string>();

  constructor(
    private readonly options: GatewayOptions,
    private readonly world: World,
    private readonly recorder: Recorder,
    private readonly random: SeededRandom,
    private readonly tokenValid: (token: string) => boolean,
    private readonly applicationId: string,
    readonly url: () => string,
  ) {
    this.sessionStarts = {
      remaining: options.sessionStartTotal,
      resetAt: Date.now() + options.sessionStartResetMs,
    };
  }

  /** Puts a guild in an outage, for sessions started from now on (see guildsInOutage). */
  guildOutage(guildId: string): void {
    this.guildsInOutage.add(guildId);
  }

  /** session_start_limit as GET /gateway/bot reports it. */
  sessionStartLimit() {
    this.refreshSessionStarts();
    return {
      total: this.options.sessionStartTotal,
      remaining: this.sessionStarts.remaining,
      reset_after: Math.max(0, this.sessionStarts.resetAt - Date.now()),
      max_concurrency: this.options.maxConcurrency,
    };
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req));
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    this.recorder.counters.connections += 1;
    const params = new URL(req.url ?? '/', 'ws://simulator').searchParams;
    const compress = params.get('compress') ?? undefined;
    const conn: ConnectionState = {
      ws,
      transport: createTransport(ws, compress && isTransportCompression(compress) ? compress : undefined),
      lastHeartbeat: Date.now(),
      ignoreHeartbeats: false,
      payloadTimes: [],
    };
    this.connections.add(conn);
    ws.on('close', (code, reason) => this.onClose(conn, code, reason.toString()));
    ws.on('error', () => undefined);
    if (params.get('v') !== '10') return this.close(conn, CloseCode.InvalidAPIVersion, 'Invalid API version');
    if ((params.get('encoding') ?? 'json') !== 'json')
      return this.close(conn, CloseCode.DecodeError, 'Only encoding=json is simulated');
    if (compress !== undefined && !isTransportCompression(compress))
      return this.close(
        conn,
        CloseCode.DecodeError,
        `compress must be one of ${TRANSPORT_COMPRESSIONS.join(', ')}`,
      );
    ws.on('message', (data) => this.onMessage(conn, data));
    this.send(
      conn,
      JSON.stringify({
        op: Op.Hello,
        d: { heartbeat_interval: this.options.heartbeatIntervalMs },
        s: null,
        t: null,
      }),
    );
    this.armZombieTimer(conn);
  }

  private armZombieTimer(conn: ConnectionState): void {
    clearTimeout(conn.zombieTimer);
    // A client that stops heartbeating is a zombie; Discord drops it (session timed out).
    conn.zombieTimer = setTimeout(() => {
      this.close(conn, CloseCode.SessionTimedOut, 'Session timed out: no heartbeat', { invalidate: true });
    }, this.options.heartbeatIntervalMs * 1.5);
  }

  private onMessage(conn: ConnectionState, data: RawData): void {
    this.recorder.counters.payloadsReceived += 1;
    const now = Date.now();
    conn.payloadTimes.push(now);
    while (conn.payloadTimes.length && conn.payloadTimes[0]! <= now - this.options.payloadWindowMs)
      conn.payloadTimes.shift();
    if (conn.payloadTimes.length > this.options.payloadLimit) {
      this.recorder.violation(
        'gateway-rate-limit',
        `more than ${this.options.payloadLimit} payloads in ${this.options.payloadWindowMs} ms`,
        conn.session?.shardId,
      );
      return this.close(conn, CloseCode.RateLimited, 'You are being rate limited.');
    }
    let payload: { op?: unknown; d?: unknown };
    try {
      payload = JSON.parse(data.toString());
    } catch {
      return this.close(conn, CloseCode.DecodeError, 'Error while decoding payload.');
    }
    switch (payload.op) {
      case Op.Heartbeat:
        this.recorder.counters.heartbeats += 1;
        conn.lastHeartbeat = now;
        this.armZombieTimer(conn);
        if (!conn.ignoreHeartbeats) this.send(conn, '{"op":11,"d":null,"s":null,"t":null}');
        return;
      case Op.Identify:
        return this.identify(conn, payload.d as IdentifyData);
      case Op.Resume:
        return this.resume(conn, payload.d as ResumeData);
      case Op.RequestGuildMembers:
        if (!conn.session) return this.close(conn, CloseCode.NotAuthenticated, 'Not authenticated.');
        return this.requestGuildMembers(conn, conn.session, payload.d as RequestGuildMembers);
      case Op.PresenceUpdate:
      case Op.VoiceStateUpdate:
        if (!conn.session) return this.close(conn, CloseCode.NotAuthenticated, 'Not authenticated.');
        return; // accepted and ignored
      default:
        return this.close(conn, CloseCode.UnknownOpcode, 'Unknown opcode.');
    }
  }

  private identify(conn: ConnectionState, d: IdentifyData): void {
    const [shardId, shardCount] = Array.isArray(d?.shard) ? d.shard : [0, 1];
    const intents = Number(d?.intents);
    const record = (refused?: string, sessionId?: string) =>
      this.recorder.identifies.push({
        at: Date.now(),
        shardId,
        shardCount,
        bucket: shardId % this.options.maxConcurrency,
        intents,
        sessionId,
        refused,
      });
    if (typeof d?.token !== 'string' || !this.tokenValid(stripBot(d.token))) {
      record('authentication failed');
      return this.close(conn, CloseCode.AuthenticationFailed, 'Authentication failed.');
    }
    if (conn.session) return this.close(conn, CloseCode.AlreadyAuthenticated, 'Already authenticated.');
    if (
      !Number.isInteger(shardId) ||
      !Number.isInteger(shardCount) ||
      shardCount < 1 ||
      shardId < 0 ||
      shardId >= shardCount
    ) {
      record('invalid shard');
      return this.close(conn, CloseCode.InvalidShard, 'Invalid shard.');
    }
    if (!Number.isInteger(intents) || intents < 0 || (intents & ~ALL_INTENTS) !== 0) {
      record('invalid intents');
      return this.close(conn, CloseCode.InvalidIntents, 'Invalid intent(s).');
    }
    if ((intents & PRIVILEGED_INTENTS & ~this.options.enabledPrivilegedIntents) !== 0) {
      record('disallowed intents');
      return this.close(conn, CloseCode.DisallowedIntents, 'Disallowed intent(s).');
    }
    if (this.world.maxGuildsPerShard(shardCount) > this.options.maxGuildsPerShard) {
      record('sharding required');
      return this.close(conn, CloseCode.ShardingRequired, 'Sharding required.');
    }
    this.refreshSessionStarts();
    if (this.sessionStarts.remaining <= 0) {
      record('session start limit exhausted');
      this.recorder.violation(
        'session-start-limit',
        `identify with no session starts remaining (total ${this.options.sessionStartTotal})`,
        shardId,
      );
      return this.send(conn, JSON.stringify({ op: Op.InvalidSession, d: false, s: null, t: null }));
    }
    const bucket = shardId % this.options.maxConcurrency;
    const now = Date.now();
    const last = this.bucketLastIdentify.get(bucket);
    if (last !== undefined && now - last < this.options.identifyWindowMs) {
      record('identify rate limit');
      this.recorder.violation(
        'identify-concurrency',
        `shard ${shardId} identified ${now - last} ms after another identify in bucket ${bucket} (window ${this.options.identifyWindowMs} ms)`,
        shardId,
      );
      // Discord answers an identify over the rate limit with INVALID_SESSION (not resumable).
      return this.send(conn, JSON.stringify({ op: Op.InvalidSession, d: false, s: null, t: null }));
    }
    this.bucketLastIdentify.set(bucket, now);
    this.sessionStarts.remaining -= 1;

    const largeThreshold = Math.min(250, Math.max(50, Number(d.large_threshold) || 50));
    const session = new Session(
      this.random.hex(16),
      shardId,
      shardCount,
      intents,
      largeThreshold,
      this.options.replayLimit,
    );
    this.sessions.set(session.id, session);
    this.index(session).add(session);
    this.attach(conn, session);
    record(undefined, session.id);

    const guilds = this.world.guildsOfShard(shardId, shardCount);
    this.deliver(
      session,
      'READY',
      JSON.stringify(readyPayload(this.world, session, guilds, this.url(), this.applicationId)),
    );
    for (const guild of guilds) {
      if (this.guildsInOutage.has(guild.id)) continue;
      this.deliverIfIntended(
        session,
        'GUILD_CREATE',
        JSON.stringify(guildCreatePayload(this.world, guild, largeThreshold)),
      );
    }
  }

  /** Op 8: GUILD_MEMBERS_CHUNK dispatches for a guild of the session's shard. */
  private requestGuildMembers(conn: ConnectionState, session: Session, d: RequestGuildMembers): void {
    const guild = this.world.guild(String(d?.guild_id));
    // Discord answers only for guilds the shard holds; anything else gets no chunk.
    if (!guild || shardOfGuild(guild.id, session.shardCount) !== session.shardId) return;
    const plan = planMemberChunks(this.world, guild, d, session.intents);
    if (plan.kind === 'disallowed')
      return this.close(conn, CloseCode.DisallowedIntents, 'Disallowed intent(s).');
    if (plan.kind === 'invalid')
      return this.close(conn, CloseCode.DecodeError, `Error while decoding payload: ${plan.reason}.`);
    for (const chunk of plan.chunks) this.deliver(session, 'GUILD_MEMBERS_CHUNK', JSON.stringify(chunk));
  }

  private resume(conn: ConnectionState, d: ResumeData): void {
    if (typeof d?.token !== 'string' || !this.tokenValid(stripBot(d.token))) {
      return this.close(conn, CloseCode.AuthenticationFailed, 'Authentication failed.');
    }
    if (conn.session) return this.close(conn, CloseCode.AlreadyAuthenticated, 'Already authenticated.');
    const session = this.sessions.get(String(d.session_id));
    if (!session || session.invalidated) {
      return this.send(conn, JSON.stringify({ op: Op.InvalidSession, d: false, s: null, t: null }));
    }
    const fromSeq = Number(d.seq);
    if (!Number.isInteger(fromSeq) || fromSeq > session.seq || fromSeq < 0) {
      this.invalidate(session);
      return this.close(conn, CloseCode.InvalidSeq, 'Invalid seq.');
    }
    const replay = session.after(fromSeq);
    if (!replay) {
      this.invalidate(session);
      return this.send(conn, JSON.stringify({ op: Op.InvalidSession, d: false, s: null, t: null }));
    }
    if (session.connection) {
      // A newer connection takes the session over; the old one is closed as Discord does.
      const old = [...this.connections].find((c) => c === session.connection);
      if (old) this.close(old, CloseCode.UnknownError, 'Session resumed elsewhere');
    }
    this.attach(conn, session);
    for (const payload of replay) this.send(conn, payload);
    this.recorder.resumes.push({
      at: Date.now(),
      shardId: session.shardId,
      sessionId: session.id,
      fromSeq,
      replayed: replay.length,
    });
    // RESUMED ends the replay. It is not itself replayable, so it takes no new sequence number.
    this.send(conn, `{"op":0,"s":${session.seq},"t":"RESUMED","d":{}}`);
    this.recorder.counters.dispatchesSent += 1;
  }

  private attach(conn: ConnectionState, session: Session): void {
    clearTimeout(session.expiryTimer);
    session.expiryTimer = undefined;
    conn.session = session;
    session.connection = conn;
  }

  private index(session: Session): Set<Session> {
    let byId = this.byShard.get(session.shardCount);
    if (!byId) this.byShard.set(session.shardCount, (byId = new Map()));
    let set = byId.get(session.shardId);
    if (!set) byId.set(session.shardId, (set = new Set()));
    return set;
  }

  private invalidate(session: Session): void {
    session.invalidated = true;
    clearTimeout(session.expiryTimer);
    this.sessions.delete(session.id);
    this.index(session).delete(session);
  }

  private onClose(conn: ConnectionState, code: number, reason: string): void {
    clearTimeout(conn.zombieTimer);
    this.connections.delete(conn);
    const session = conn.session;
    if (!session || session.connection !== conn) return;
    session.connection = undefined;
    this.recorder.closes.push({ at: Date.now(), shardId: session.shardId, code, by: 'client', reason });
    // Closing with 1000 or 1001 ends the session (the bot goes offline); anything else
    // leaves it resumable for a while.
    if (code === 1000 || code === 1001) return this.invalidate(session);
    if (session.invalidated) return;
    session.expiryTimer = setTimeout(() => this.invalidate(session), this.options.sessionTtlMs);
    session.expiryTimer.unref();
  }

  private close(
    conn: ConnectionState,
    code: number,
    reason: string,
    opts: { invalidate?: boolean } = {},
  ): void {
    clearTimeout(conn.zombieTimer);
    this.recorder.closes.push({ at: Date.now(), shardId: conn.session?.shardId, code, by: 'server', reason });
    if (conn.session && (opts.invalidate || code === CloseCode.InvalidSeq)) this.invalidate(conn.session);
    conn.transport.close(code, reason);
  }

  private send(conn: ConnectionState, payload: string): void {
    conn.transport.send(payload);
  }

  /** Adds a dispatch to the session and sends it if connected. */
  private deliver(session: Session, type: string, dataJson: string): void {
    const payload = session.push(type, dataJson);
    session.connection?.transport.send(payload);
    this.recorder.counters.dispatchesSent += 1;
  }

  private deliverIfIntended(session: Session, type: string, dataJson: string): boolean {
    const needed = requiredIntent(type);
    if (needed !== undefined && (session.intents & needed) === 0) {
      this.recorder.counters.dispatchesFilteredByIntent += 1;
      return false;
    }
    this.deliver(session, type, dataJson);
    return true;
  }

  /** Sends a dispatch to every session whose shard holds `guildId`; returns how many got it. */
  dispatchToGuild(guildId: string, type: string, data: unknown): number {
    const dataJson = JSON.stringify(data);
    let delivered = 0;
    let matched = 0;
    for (const [count, byId] of this.byShard) {
      const sessions = byId.get(shardOfGuild(guildId, count));
      if (!sessions) continue;
      for (const session of sessions) {
        matched += 1;
        if (this.deliverIfIntended(session, type, dataJson)) delivered += 1;
      }
    }
    if (matched === 0) this.recorder.counters.dispatchesUndelivered += 1;
    return delivered;
  }

  /** Sends a dispatch to the sessions of one shard (of any shard count, or of `shardCount`). */
  dispatchToShard(shardId: number, type: string, data: unknown, shardCount?: number): number {
    const dataJson = JSON.stringify(data);
    let delivered = 0;
    for (const session of this.sessionsOfShard(shardId, shardCount)) {
      if (this.deliverIfIntended(session, type, dataJson)) delivered += 1;
    }
    if (delivered === 0) this.recorder.counters.dispatchesUndelivered += 1;
    return delivered;
  }

  sessionsOfShard(shardId: number, shardCount?: number): Session[] {
    const out: Session[] = [];
    for (const [count, byId] of this.byShard) {
      if (shardCount !== undefined && count !== shardCount) continue;
      for (const s of byId.get(shardId) ?? []) out.push(s);
    }
    return out;
  }

  /** Applies a fault to the live connections of a shard's sessions; returns how many. */
  fault(shardId: number, fault: GatewayFault, shardCount?: number): number {
    let n = 0;
    for (const session of this.sessionsOfShard(shardId, shardCount)) {
      const conn = [...this.connections].find((c) => c.session === session && c === session.connection);
      if (!conn) continue;
      n += 1;
      switch (fault.kind) {
        case 'reconnect':
          this.send(conn, '{"op":7,"d":null,"s":null,"t":null}');
          break;
        case 'invalid-session':
          if (!fault.resumable) this.invalidate(session);
          this.send(conn, JSON.stringify({ op: Op.InvalidSession, d: fault.resumable, s: null, t: null }));
          break;
        case 'drop':
          conn.ws.terminate();
          break;
        case 'ignore-heartbeats':
          conn.ignoreHeartbeats = true;
          break;
        case 'request-heartbeat':
          this.send(conn, '{"op":1,"d":null,"s":null,"t":null}');
          break;
        case 'close':
          this.close(conn, fault.code, 'Closed by the simulator');
          break;
      }
    }
    return n;
  }

  /** Open WebSocket connections, identified or not. */
  openConnections(): number {
    return this.connections.size;
  }

  /** Shards with a connected session, as `${shardId}/${shardCount}`. */
  connectedShards(): string[] {
    return [...this.sessions.values()].filter((s) => s.connection).map((s) => `${s.shardId}/${s.shardCount}`);
  }

  private refreshSessionStarts(): void {
    if (Date.now() >= this.sessionStarts.resetAt) {
      this.sessionStarts = {
        remaining: this.options.sessionStartTotal,
        resetAt: Date.now() + this.options.sessionStartResetMs,
      };
    }
  }

  /** For tests: set the remaining session starts. */
  setSessionStartsRemaining(remaining: number): void {
    this.refreshSessionStarts();
    this.sessionStarts.remaining = remaining;
  }

  closeAll(): void {
    for (const conn of this.connections) {
      clearTimeout(conn.zombieTimer);
      conn.ws.terminate();
    }
    for (const s of this.sessions.values()) clearTimeout(s.expiryTimer);
    this.wss.close();
  }
}

interface IdentifyData {
  token?: unknown;
  intents?: unknown;
  shard?: [number, number];
  large_threshold?: unknown;
}
interface ResumeData {
  token?: unknown;
  session_id?: unknown;
  seq?: unknown;
}

function stripBot(token: string): string {
  return token.startsWith('Bot ') ? token.slice(4) : token;
}
