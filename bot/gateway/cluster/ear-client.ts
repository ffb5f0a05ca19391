// The client a gateway cluster process runs: @discordjs/ws's WebSocketManager for the process's
// shards (connection, heartbeats, IDENTIFY/RESUME, reconnects; every frame parsed once, there)
// and nothing else: no caches, managers or structures. It is the class Kurasuta's BaseCluster
// builds (`new manager.client({ ...clientOptions, shards, shardCount })`, then attaches its
// ShardClientUtil as `client.shard`), and it emits the events BaseCluster relays to the primary
// under discord.js's names: `ready` once every shard of the process is up, `shardReady`,
// `shardResume`, `shardReconnecting`, `shardDisconnect`. Dispatches are emitted as parsed by
// @discordjs/ws, as `dispatch` (payload, shardId); heartbeat ACKs as `heartbeat` (shardId, ms).
// A shard is up after READY and a GUILD_CREATE (or GUILD_DELETE) of each guild READY listed,
// or after the wait for them times out (as discord.js does it), or after RESUMED. This file
// must not import discord.js: keeping it out of the cluster processes is its point
// (tests/gateway/lean-ear.test.ts checks the loaded modules).
import { EventEmitter } from 'node:events';
import {
  WebSocketManager,
  WebSocketShardEvents,
  type IIdentifyThrottler,
  type SessionInfo,
} from '@discordjs/ws';

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

// Close codes after which @discordjs/ws gives up on the shard (discord.js's list).
const UNRECOVERABLE_CLOSE_CODES = new Set([4004, 4010, 4011, 4012, 4013, 4014]);
const GUILDS_INTENT = 1;
const DEFAULT_WAIT_GUILD_TIMEOUT_MS = 15_000;

interface ShardState {
  ready: boolean;
  /** Guilds READY listed whose GUILD_CREATE has not come yet; only between READY and up. */
  pending?: Set<string>;
  waitTimer?: NodeJS.Timeout;
  /** Dispatches since the last HELLO: a RESUME's replay, counted until RESUMED. */
  sinceHello?: number;
}

export class EarClient extends EventEmitter {
  /** Kurasuta's ShardClientUtil, attached by its BaseCluster. */
  shard?: unknown;
  private readonly options: KurasutaClientOptions;
  private readonly states = new Map<number, ShardState>();
  private manager?: WebSocketManager;
  private announced = false;

  constructor(options: KurasutaClientOptions) {
    super();
    this.options = options;
    for (const id of options.shards) this.states.set(id, { ready: false });
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
      updateSessionInfo: (shardId, info) => hooks.updateSessionInfo(shardId, info),
    });
    this.manager = manager;
    manager.on(WebSocketShardEvents.Dispatch, (payload, shardId) => this.onDispatch(payload, shardId));
    manager.on(WebSocketShardEvents.Hello, (shardId) => {
      const state = this.states.get(shardId);
      if (state) state.sinceHello = 0;
    });
    manager.on(WebSocketShardEvents.Closed, (code, shardId) => this.onClosed(code, shardId));
    manager.on(WebSocketShardEvents.HeartbeatComplete, ({ latency }, shardId) =>
      this.emit('heartbeat', shardId, latency),
    );
    manager.on(WebSocketShardEvents.Error, (err, shardId) => this.emit('shardError', err, shardId));
    manager.on(WebSocketShardEvents.SocketError, (err, shardId) => this.emit('shardError', err, shardId));
    manager.on(WebSocketShardEvents.Debug, (message, shardId) => this.emit('debug', message, shardId));
    await manager.connect();
  }

  /**
   * Closes every connection with 4200 (resumable for Discord), and @discordjs/ws forgets the
   * sessions (it reports null for each). The gateway does not call this at shutdown: there the
   * process exit drops the connections and the stored sessions stay. For tests and tools.
   */
  async destroy(): Promise<void> {
    await this.manager?.destroy({ code: 4200, reason: 'client destroyed' });
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
      this.options.intents & GUILDS_INTENT
        ? (this.options.waitGuildTimeoutMs ?? DEFAULT_WAIT_GUILD_TIMEOUT_MS)
        : 0;
    state.waitTimer = setTimeout(() => {
      state.waitTimer = undefined;
      this.up(state, shardId, () => this.emit('shardReady', shardId, new Set(pending)));
    }, waitMs).unref();
  }

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
    if (UNRECOVERABLE_CLOSE_CODES.has(code))
      this.emit('shardDisconnect', { code, reason: `close code ${code}`, wasClean: true }, shardId);
    else this.emit('shardReconnecting', shardId);
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

/**
 * The one REST call @discordjs/ws makes (`rest.get('/gateway/bot')`, for the gateway URL),
 * without a REST client: the Ear makes no other. Errors name the route and status, never the
 * token.
 */
export function gatewayInfoRest(apiUrl: string, token: string): { get(route: string): Promise<unknown> } {
  return {
    async get(route: string): Promise<unknown> {
      for (let attempt = 1; ; attempt++) {
        const res = await fetch(`${apiUrl.replace(/\/+$/, '')}/v10${route}`, {
          headers: { authorization: `Bot ${token}` },
        });
        if (res.ok) return res.json();
        // A rate limit or a server error is waited out a few times, as a REST client would.
        const retryable = res.status === 429 || res.status >= 500;
        if (!retryable || attempt >= 5)
          throw Object.assign(new Error(`GET ${route}: HTTP ${res.status}`), { status: res.status });
        const retryAfterS = Number(res.headers.get('retry-after'));
        await new Promise((r) => setTimeout(r, retryAfterS > 0 ? retryAfterS * 1000 : 500 * attempt));
      }
    },
  };
}
