// The client a gateway cluster process runs: @discordjs/ws's WebSocketManager for the process's
// shards (connection, heartbeats, IDENTIFY/RESUME, reconnects; every frame parsed once, there)
// and nothing else: no caches, managers or structures. It is the class Kurasuta's BaseCluster
// builds (`new manager.client({ ...clientOptions, shards, shardCount })`, then attaches its
// ShardClientUtil as `client.shard`), and it emits the events BaseCluster relays to the primary
// under discord.js's names: `ready` once every shard of the process is up, `shardReady`,
// `shardResume`, `shardReconnecting`, `shardDisconnect`. Dispatches are emitted as parsed by
// @discordjs/ws, as `dispatch` (payload, shardId); heartbeat ACKs as `heartbeat` (shardId, ms);
// each new connection's HELLO, before any of its dispatches, as `shardHello` (shardId).
// A close Discord does not let a shard recover from rejects `login` with an
// UnrecoverableGatewayError (the cluster then exits for good); after login it is `shardDisconnect`.
// A shard is up after READY and a GUILD_CREATE (or GUILD_DELETE) of each guild READY listed,
// or after the wait for them times out (as discord.js does it), or after RESUMED. This file
// must not import discord.js: keeping it out of the cluster processes is its point
// (tests/gateway/lean-ear.test.ts checks the loaded modules).
import { EventEmitter } from 'node:events';
import {
  WebSocketManager,
  WebSocketShardEvents,
  WebSocketShardDestroyRecovery,
  WebSocketShardStatus,
  type IIdentifyThrottler,
  type SessionInfo,
  type WebSocketShardDestroyOptions,
} from '@discordjs/ws';
import { GatewayCloseCodes, GatewayIntentBits } from '../discord-gateway-names.js';

/** What the gateway passes as Kurasuta's `clientOptions`. */
export interface EarClientOptions {
  intents: number;
  /** Discord's REST base (`https://discord.com/api`), for `GET /gateway/bot` at login. */
  apiUrl: string;
  /** How long a shard waits for its guilds' GUILD_CREATEs after READY (discord.js: 15 s). */
  waitGuildTimeoutMs?: number;
}

/** What Kurasuta's BaseCluster adds to the options: this process's shards and the bot's total. */
export interface KurasutaClientOptions extends EarClientOptions {
  shards: number[];
  shardCount: number;
}

/** Where identifies are paced and sessions are kept (Redis, in the gateway). */
export interface EarSessionHooks {
  identifyThrottler: IIdentifyThrottler;
  retrieveSessionInfo(shardId: number): Promise<SessionInfo | null>;
  updateSessionInfo(shardId: number, info: SessionInfo | null): void;
}

export interface GatewayDispatch {
  t: string;
  s: number;
  d: unknown;
}

/** What the client emits, with its arguments (Kurasuta relays the discord.js-named ones). */
export interface EarClientEvents {
  ready: [client: EarClient];
  shardReady: [shardId: number, unavailableGuilds?: Set<string>];
  shardResume: [shardId: number, replayed: number];
  shardReconnecting: [shardId: number];
  shardDisconnect: [event: { code: number; reason: string; wasClean: boolean }, shardId: number];
  shardError: [err: Error, shardId: number];
  dispatch: [payload: GatewayDispatch, shardId: number];
  heartbeat: [shardId: number, latencyMs: number];
  shardHello: [shardId: number];
  debug: [message: string, shardId: number];
}

// Close codes after which @discordjs/ws 2.0.4 gives up on the shard (WebSocketShard.onClose
// destroys it with no recovery); discord.js's list too.
const UNRECOVERABLE_CLOSE_CODES = new Set<number>([
  GatewayCloseCodes.AuthenticationFailed,
  GatewayCloseCodes.InvalidShard,
  GatewayCloseCodes.ShardingRequired,
  GatewayCloseCodes.InvalidAPIVersion,
  GatewayCloseCodes.InvalidIntents,
  GatewayCloseCodes.DisallowedIntents,
]);
const DEFAULT_WAIT_GUILD_TIMEOUT_MS = 15_000;

/** "4014 (DisallowedIntents)": what a log or a probe says about a close code. */
export function describeCloseCode(code: number): string {
  const name = (GatewayCloseCodes as unknown as Record<number, string | undefined>)[code];
  return name ? `${code} (${name})` : String(code);
}

/**
 * Discord refuses this bot's connection in a way a retry cannot change (a bad token, intents
 * not allowed, sharding Discord requires): restarting the process would only spend session
 * starts and invalid requests. The message names the cause, never the token.
 */
export class UnrecoverableGatewayError extends Error {
  override readonly name = 'UnrecoverableGatewayError';
}

/** What `resume` uses of @discordjs/ws's WebSocketShard. */
interface ResumableShard {
  readonly status: WebSocketShardStatus;
  destroy(options: WebSocketShardDestroyOptions): Promise<void>;
}

interface ShardState {
  ready: boolean;
  /** Guilds READY listed whose GUILD_CREATE has not come yet; only between READY and up. */
  pending?: Set<string>;
  waitTimer?: NodeJS.Timeout;
  /** Dispatches since the last HELLO: a RESUME's replay, counted until RESUMED. */
  sinceHello?: number;
}

export class EarClient extends EventEmitter<EarClientEvents> {
  /** Kurasuta's ShardClientUtil, attached by its BaseCluster. */
  shard?: unknown;
  private readonly options: KurasutaClientOptions;
  private readonly states = new Map<number, ShardState>();
  private manager?: WebSocketManager;
  private announced = false;
  private destroyed = false;
  /** Halted: closing every connection must not forget the stored sessions. */
  private keepSessions = false;
  /** The first unrecoverable close during login: what `login` rejects with. */
  private fatalClose?: { code: number; shardId: number };

  constructor(options: KurasutaClientOptions) {
    super();
    this.options = options;
    for (const id of options.shards) this.states.set(id, { ready: false });
  }

  /** This process's shards. */
  get shardIds(): number[] {
    return [...this.states.keys()];
  }

  async login(token: string, hooks: EarSessionHooks): Promise<void> {
    const { shards, shardCount, intents } = this.options;
    const manager = new WebSocketManager({
      token,
      intents,
      shardCount,
      shardIds: shards,
      rest: gatewayInfoRest(this.options.apiUrl, token) as never,
      buildIdentifyThrottler: () => hooks.identifyThrottler,
      retrieveSessionInfo: (shardId) => hooks.retrieveSessionInfo(shardId),
      updateSessionInfo: (shardId, info) => {
        if (!this.keepSessions) hooks.updateSessionInfo(shardId, info);
      },
    });
    this.manager = manager;
    manager.on(WebSocketShardEvents.Dispatch, (payload, shardId) => this.onDispatch(payload, shardId));
    manager.on(WebSocketShardEvents.Hello, (shardId) => {
      const state = this.states.get(shardId);
      if (state) state.sinceHello = 0;
      this.emit('shardHello', shardId);
    });
    manager.on(WebSocketShardEvents.Closed, (code, shardId) => this.onClosed(code, shardId));
    manager.on(WebSocketShardEvents.HeartbeatComplete, ({ latency }, shardId) =>
      this.emit('heartbeat', shardId, latency),
    );
    manager.on(WebSocketShardEvents.Error, (err, shardId) => this.emit('shardError', err, shardId));
    manager.on(WebSocketShardEvents.SocketError, (err, shardId) => this.emit('shardError', err, shardId));
    manager.on(WebSocketShardEvents.Debug, (message, shardId) => this.emit('debug', message, shardId));
    try {
      await manager.connect();
    } catch (err) {
      // @discordjs/ws rejects with its own message ("Authentication failed"); the close code
      // is what says it is final.
      if (this.fatalClose)
        throw new UnrecoverableGatewayError(
          `shard ${this.fatalClose.shardId}: Discord closed the connection with ${describeCloseCode(this.fatalClose.code)}`,
          { cause: err },
        );
      throw err;
    }
  }

  /**
   * Closes every connection and forgets the sessions: @discordjs/ws reports null for each to
   * `updateSessionInfo`, which deletes them from the store. Emits nothing after it is called.
   * The gateway does not call this at shutdown: there the process exit drops the connections
   * and the stored sessions stay. For tests and tools.
   */
  async destroy(): Promise<void> {
    this.destroyed = true;
    for (const state of this.states.values()) this.stopWaiting(state);
    await this.manager?.destroy({ code: 4200, reason: 'client destroyed' });
  }

  /**
   * Closes every connection (not with 1000, so Discord keeps the sessions resumable) and keeps
   * the stored sessions, as a process exit would. Emits nothing after it is called. For a
   * cluster Discord refused for good that runs in the pod's own process: the forked shape's exit
   * drops its other shards' connections, this does the same without ending the process.
   */
  async halt(): Promise<void> {
    this.keepSessions = true;
    await this.destroy();
  }

  /**
   * Closes the shard's connection resumably (code 4200) and reconnects it: it RESUMEs the
   * session `retrieveSessionInfo` answers then, and Discord replays what followed its sequence.
   * A shard not Ready is reconnecting already (that connection asks `retrieveSessionInfo` too, or
   * has since its close): it is left to it, since closing a connection waiting for its HELLO
   * would make @discordjs/ws drop the session.
   */
  async resume(shardId: number, reason: string): Promise<void> {
    // @discordjs/ws 2.0.4 has no public per-shard close; its in-process strategy (the default)
    // holds the shards (tests/gateway/ear-client.test.ts checks it, "resume()").
    const manager = this.manager as unknown as
      { strategy?: { shards?: Map<number, ResumableShard> } } | undefined;
    const shards = manager?.strategy?.shards;
    const shard = shards?.get(shardId);
    if (!shard) throw new Error(`shard ${shardId} has no connection in this process to resume`);
    if (shard.status !== WebSocketShardStatus.Ready) return;
    await shard.destroy({ reason, recover: WebSocketShardDestroyRecovery.Resume });
  }

  override emit<K extends keyof EarClientEvents>(event: K, ...args: EarClientEvents[K]): boolean {
    if (this.destroyed) return false;
    return (super.emit as (e: K, ...a: EarClientEvents[K]) => boolean).call(this, event, ...args);
  }

  /** Kurasuta's broadcastEval calls this in every cluster; the Ear runs no code it is sent. */
  _eval(): never {
    throw new Error('EarClient does not evaluate code (broadcastEval is unsupported in the gateway)');
  }

  // Readiness follows the dispatch stream itself (READY, GUILD_CREATE, RESUMED), after the
  // dispatch is handed on: @discordjs/ws emits its own `ready` and `resumed` events as the frame
  // arrives, before the dispatches ahead of it (a RESUME's replay) have been emitted.
  private onDispatch(payload: GatewayDispatch, shardId: number): void {
    this.emit('dispatch', payload, shardId);
    const state = this.states.get(shardId);
    if (!state) return;
    switch (payload.t) {
      case 'READY':
        return this.onReady(state, shardId, (payload.d as { guilds: { id: string }[] }).guilds);
      case 'RESUMED':
        return this.onResumed(state, shardId);
      case 'GUILD_CREATE':
      case 'GUILD_DELETE':
        if (state.pending) this.gotGuild(state, shardId, (payload.d as { id: string }).id);
    }
    if (state.sinceHello !== undefined) state.sinceHello++;
  }

  private onReady(state: ShardState, shardId: number, guilds: readonly { id: string }[]): void {
    this.stopWaiting(state);
    state.sinceHello = undefined;
    state.pending = new Set(guilds.map((g) => g.id));
    this.checkGuilds(state, shardId);
  }

  private gotGuild(state: ShardState, shardId: number, guildId: string): void {
    state.pending!.delete(guildId);
    this.checkGuilds(state, shardId);
  }

  /** Up once every guild arrived; else up when none arrived for the wait time (discord.js's rule). */
  private checkGuilds(state: ShardState, shardId: number): void {
    if (state.waitTimer) clearTimeout(state.waitTimer);
    state.waitTimer = undefined;
    const pending = state.pending!;
    if (pending.size === 0) return this.up(state, shardId, () => this.emit('shardReady', shardId));
    // Without the Guilds intent no GUILD_CREATE comes: no wait.
    const waitMs =
      this.options.intents & GatewayIntentBits.Guilds
        ? (this.options.waitGuildTimeoutMs ?? DEFAULT_WAIT_GUILD_TIMEOUT_MS)
        : 0;
    state.waitTimer = setTimeout(() => {
      state.waitTimer = undefined;
      this.up(state, shardId, () => this.emit('shardReady', shardId, new Set(pending)));
    }, waitMs).unref();
  }

  // After a resumable INVALID_SESSION on a live connection @discordjs/ws RESUMEs without a new
  // HELLO: that replay is not counted (reported as 0).
  private onResumed(state: ShardState, shardId: number): void {
    const replayed = state.sinceHello ?? 0;
    state.sinceHello = undefined;
    this.up(state, shardId, () => this.emit('shardResume', shardId, replayed));
  }

  private onClosed(code: number, shardId: number): void {
    const state = this.states.get(shardId);
    if (!state) return;
    this.stopWaiting(state);
    state.ready = false;
    if (UNRECOVERABLE_CLOSE_CODES.has(code)) {
      this.fatalClose ??= { code, shardId };
      this.emit('shardDisconnect', { code, reason: describeCloseCode(code), wasClean: true }, shardId);
    } else this.emit('shardReconnecting', shardId);
  }

  private up(state: ShardState, shardId: number, announce: () => void): void {
    this.stopWaiting(state);
    state.ready = true;
    announce();
    // Kurasuta waits for `ready` to consider the cluster started (and kills it otherwise). Once.
    if (!this.announced && [...this.states.values()].every((s) => s.ready)) {
      this.announced = true;
      this.emit('ready', this);
    }
  }

  private stopWaiting(state: ShardState): void {
    if (state.waitTimer) clearTimeout(state.waitTimer);
    state.waitTimer = undefined;
    state.pending = undefined;
  }
}

/** How `GET /gateway/bot` is retried: attempts, each attempt's timeout, the longest wait. */
const REST_ATTEMPTS = 5;
const REST_TIMEOUT_MS = 15_000;
const REST_MAX_WAIT_MS = 60_000;

/**
 * The one REST call @discordjs/ws makes (`rest.get('/gateway/bot')`, for the gateway URL),
 * without a REST client: the Ear makes no other. A rate limit, a server error, a timeout or a
 * network error is retried a few times (waits capped); a 401 is an UnrecoverableGatewayError.
 * Errors name the route and status, never the token.
 */
export function gatewayInfoRest(apiUrl: string, token: string): { get(route: string): Promise<unknown> } {
  const url = (route: string) => `${apiUrl.replace(/\/+$/, '')}/v10${route}`;
  return {
    async get(route: string): Promise<unknown> {
      for (let attempt = 1; ; attempt++) {
        let failure: Error;
        let waitMs = 500 * attempt;
        try {
          const res = await fetch(url(route), {
            headers: { authorization: `Bot ${token}` },
            signal: AbortSignal.timeout(REST_TIMEOUT_MS),
          });
          if (res.ok) return await res.json();
          await res.body?.cancel();
          if (res.status === 401)
            throw new UnrecoverableGatewayError(`GET ${route}: HTTP 401 (Discord does not accept the token)`);
          failure = Object.assign(new Error(`GET ${route}: HTTP ${res.status}`), { status: res.status });
          if (res.status !== 429 && res.status < 500) throw failure;
          const retryAfterS = Number(res.headers.get('retry-after'));
          if (retryAfterS > 0) waitMs = Math.min(retryAfterS * 1000, REST_MAX_WAIT_MS);
        } catch (err) {
          if (err instanceof UnrecoverableGatewayError || (err as { status?: number }).status) throw err;
          failure = new Error(`GET ${route}: ${(err as Error).message}`, { cause: err });
        }
        if (attempt >= REST_ATTEMPTS) throw failure;
        await new Promise((r) => setTimeout(r, waitMs));
      }
    },
  };
}
