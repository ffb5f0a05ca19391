// The Discord simulator: one HTTP server on loopback serving REST (/api/v10), the gateway
// (WebSocket upgrade on /gateway) and a control API (/_simulator) for other processes.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleControl, isControlPath } from './control.js';
import { GatewayServer, type GatewayFault, type GatewayOptions } from './gateway/server.js';
import { PRIVILEGED_INTENTS } from './gateway/intents.js';
import {
  guildCreatePayload,
  guildPayload,
  interactionPayload,
  type InteractionSpec,
} from './gateway/payloads.js';
import { SeededRandom } from './random.js';
import { Recorder, type InteractionResponseRecord } from './recorder.js';
import { discordError } from './rest/http.js';
import { RateLimits, type Limit } from './rest/rate-limits.js';
import { handleRest, isRestPath } from './rest/server.js';
import { World, type Guild, type GuildSize, type User } from './world.js';

const MessageFlags = { Ephemeral: 1 << 6, Loading: 1 << 7 } as const;

export interface SimulatorOptions {
  /** Same seed, same world, ids and session ids. */
  seed?: number;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Valid bot tokens; the first is `sim.token`. */
  tokens?: string[];
  applicationId?: string;
  botUser?: Partial<User>;
  /** Guilds created at start. */
  guilds?: number;
  guildSize?: Partial<GuildSize>;
  /** Discord recommends about one shard per 1,000 guilds. */
  guildsPerRecommendedShard?: number;
  gateway?: Partial<GatewayOptions>;
  rest?: { globalPerSecond?: number; routeLimits?: Record<string, Limit>; defaultRouteLimit?: Limit };
  /** Discord's initial-response window for interactions (3 s). */
  interactionResponseWindowMs?: number;
  /** Interaction tokens stay valid for follow-ups this long (15 min). */
  interactionTokenTtlMs?: number;
}

export const DEFAULT_GATEWAY_OPTIONS: GatewayOptions = {
  heartbeatIntervalMs: 41_250,
  identifyWindowMs: 5_000,
  maxConcurrency: 1,
  sessionStartTotal: 1000,
  sessionStartResetMs: 24 * 60 * 60 * 1000,
  sessionTtlMs: 120_000,
  replayLimit: 100_000,
  payloadLimit: 120,
  payloadWindowMs: 60_000,
  maxGuildsPerShard: 2_500,
  enabledPrivilegedIntents: PRIVILEGED_INTENTS,
};

interface InteractionState {
  id: string;
  token: string;
  guildId: string;
  channelId: string;
  sentAt: number;
  acknowledged: boolean;
  waiters: ((r: InteractionResponseRecord) => void)[];
}

export interface InjectedInteraction {
  id: string;
  token: string;
  /** Resolves with the first response (callback) the bot sends. */
  response: Promise<InteractionResponseRecord>;
}

export class DiscordSimulator {
  readonly world: World;
  readonly recorder = new Recorder();
  readonly gateway: GatewayServer;
  readonly rateLimits: RateLimits;
  readonly applicationId: string;
  readonly token: string;
  private readonly tokens: Set<string>;
  private readonly random: SeededRandom;
  private readonly interactions = new Map<string, InteractionState>();
  private readonly interactionsByToken = new Map<string, InteractionState>();
  private readonly commandStore = new Map<string, Record<string, unknown>[]>();
  private server?: Server;
  private address = '';

  private constructor(private readonly options: SimulatorOptions) {
    this.random = new SeededRandom(options.seed ?? 1);
    this.world = new World({
      id: '1000000000000000001',
      username: 'shardwarden-sim-bot',
      ...options.botUser,
    });
    this.applicationId = options.applicationId ?? this.world.botUser.id;
    this.tokens = new Set(options.tokens ?? [`simulated.${this.random.hex(12)}`]);
    this.token = [...this.tokens][0]!;
    this.rateLimits = new RateLimits(
      options.rest?.globalPerSecond ?? 50,
      options.rest?.routeLimits ?? {},
      options.rest?.defaultRouteLimit ?? { limit: 10, windowMs: 1000 },
    );
    this.gateway = new GatewayServer(
      { ...DEFAULT_GATEWAY_OPTIONS, ...options.gateway },
      this.world,
      this.recorder,
      this.random,
      (t) => this.tokenValid(t),
      this.applicationId,
      () => this.gatewayUrl,
    );
    for (let i = 0; i < (options.guilds ?? 0); i++) this.world.addGuild(options.guildSize);
  }

  static async start(options: SimulatorOptions = {}): Promise<DiscordSimulator> {
    const sim = new DiscordSimulator(options);
    await sim.listen(options.host ?? '127.0.0.1', options.port ?? 0);
    return sim;
  }

  private async listen(host: string, port: number): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (isRestPath(path)) return void handleRest(this, req, res);
      if (isControlPath(path)) return void handleControl(this, req, res);
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"404: Not Found","code":0}');
    });
    server.on('upgrade', (req, socket, head) => {
      if ((req.url ?? '').startsWith('/gateway')) this.gateway.handleUpgrade(req, socket, head);
      else socket.destroy();
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    this.address = `${host}:${addr.port}`;
    this.server = server;
  }

  get port(): number {
    return Number(this.address.split(':').pop());
  }
  /** Base for discord.js / @discordjs/rest `api` option. */
  get apiUrl(): string {
    return `http://${this.address}/api`;
  }
  get gatewayUrl(): string {
    return `ws://${this.address}/gateway`;
  }
  get controlUrl(): string {
    return `http://${this.address}/_simulator`;
  }

  tokenValid(token: string): boolean {
    return this.tokens.has(token);
  }

  /** Position of a token in the `tokens` option, or undefined when it is not one of them. */
  tokenIndex(token: string): number | undefined {
    const i = [...this.tokens].indexOf(token);
    return i < 0 ? undefined : i;
  }

  recommendedShards(): number {
    return Math.max(1, Math.ceil(this.world.guilds.size / (this.options.guildsPerRecommendedShard ?? 1000)));
  }

  /** Adds guilds the bot is in; live sessions of their shards receive GUILD_CREATE. */
  addGuilds(count: number, size?: Partial<GuildSize>): Guild[] {
    const added: Guild[] = [];
    for (let i = 0; i < count; i++) {
      const guild = this.world.addGuild(size ?? this.options.guildSize);
      added.push(guild);
      if (this.gateway.sessions.size > 0) {
        this.gateway.dispatchToGuild(
          guild.id,
          'GUILD_CREATE',
          guildCreatePayload(this.world, guild, 50, new Date().toISOString()),
        );
      }
    }
    return added;
  }

  removeGuild(id: string): boolean {
    const guild = this.world.guild(id);
    if (!guild) return false;
    this.gateway.dispatchToGuild(id, 'GUILD_DELETE', { id, unavailable: false });
    this.world.removeGuild(id);
    return true;
  }

  /** Sends a dispatch to the shard(s) holding a guild, or to one shard. Returns sessions reached. */
  dispatch(
    type: string,
    data: unknown,
    target: { guildId: string } | { shardId: number; shardCount?: number },
  ): number {
    if ('guildId' in target) return this.gateway.dispatchToGuild(target.guildId, type, data);
    return this.gateway.dispatchToShard(target.shardId, type, data, target.shardCount);
  }

  /**
   * Sends `count` dispatches at `ratePerSecond` (0: as fast as possible), built by `make(i)`,
   * spread round-robin over `guildIds` (default: every guild). Resolves with the number sent.
   */
  async stream(options: {
    type: string;
    count: number;
    ratePerSecond?: number;
    guildIds?: string[];
    make?: (i: number, guildId: string) => unknown;
  }): Promise<number> {
    const guildIds = options.guildIds ?? [...this.world.guilds.keys()];
    if (guildIds.length === 0) throw new Error('stream: no guilds');
    const make = options.make ?? ((i: number, guildId: string) => ({ guild_id: guildId, n: i }));
    const rate = options.ratePerSecond ?? 0;
    const start = Date.now();
    for (let i = 0; i < options.count; i++) {
      const guildId = guildIds[i % guildIds.length]!;
      this.gateway.dispatchToGuild(guildId, options.type, make(i, guildId));
      if (rate > 0) {
        const due = start + ((i + 1) * 1000) / rate;
        const wait = due - Date.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      } else if (i % 1000 === 999) {
        await new Promise((r) => setImmediate(r));
      }
    }
    return options.count;
  }

  injectInteraction(spec: InteractionSpec): InjectedInteraction {
    const guild = this.world.guild(spec.guildId);
    if (!guild) throw new Error(`injectInteraction: unknown guild ${spec.guildId}`);
    const id = this.world.nextId();
    const token = `itoken.${this.random.hex(24)}`;
    const payload = interactionPayload(this.world, guild, spec, id, token, this.applicationId);
    const state: InteractionState = {
      id,
      token,
      guildId: guild.id,
      channelId: payload.channel_id,
      sentAt: Date.now(),
      acknowledged: false,
      waiters: [],
    };
    this.interactions.set(id, state);
    this.interactionsByToken.set(token, state);
    const response = new Promise<InteractionResponseRecord>((resolve) => state.waiters.push(resolve));
    this.gateway.dispatchToGuild(guild.id, 'INTERACTION_CREATE', payload);
    return { id, token, response };
  }

  interactionCallback(id: string, token: string, body: unknown, withResponse: boolean): unknown {
    const state = this.interactions.get(id);
    if (!state || state.token !== token) throw discordError(404, 10062, 'Unknown interaction');
    const now = Date.now();
    if (now - state.sentAt > (this.options.interactionResponseWindowMs ?? 3000)) {
      this.recorder.violation(
        'interaction-late',
        `interaction ${id} answered after ${now - state.sentAt} ms`,
      );
      throw discordError(404, 10062, 'Unknown interaction');
    }
    if (state.acknowledged) {
      this.recorder.violation('interaction-twice', `interaction ${id} acknowledged twice`);
      throw discordError(400, 40060, 'Interaction has already been acknowledged.');
    }
    const { type, data } = (body ?? {}) as { type?: number; data?: Record<string, unknown> };
    if (![1, 4, 5, 6, 7, 8, 9, 12].includes(Number(type))) {
      throw discordError(
        400,
        50035,
        `Invalid Form Body: type ${String(type)} is not an interaction callback type`,
      );
    }
    state.acknowledged = true;
    const record = this.recordInteractionResponse(state, 'callback', data, type);
    for (const w of state.waiters.splice(0)) w(record);
    if (!withResponse) return undefined;
    const message = type === 4 || type === 5 ? this.message(state.channelId, data, type === 5) : undefined;
    return {
      interaction: {
        id,
        type: 2,
        ...(message && {
          response_message_id: message.id,
          response_message_loading: type === 5,
          response_message_ephemeral: (message.flags & MessageFlags.Ephemeral) !== 0,
        }),
      },
      // Discord's resource carries the created message for CHANNEL_MESSAGE_WITH_SOURCE; a
      // deferred reply's loading message is announced in `interaction` only.
      ...(type === 4 && { resource: { type, message } }),
    };
  }

  private liveInteraction(applicationId: string, token: string): InteractionState {
    const state = this.interactionsByToken.get(token);
    if (!state || applicationId !== this.applicationId) throw discordError(404, 10015, 'Unknown Webhook');
    if (Date.now() - state.sentAt > (this.options.interactionTokenTtlMs ?? 15 * 60_000)) {
      throw discordError(401, 50027, 'Invalid Webhook Token');
    }
    if (!state.acknowledged) throw discordError(404, 10015, 'Unknown Webhook');
    return state;
  }

  interactionFollowup(applicationId: string, token: string, body: unknown): unknown {
    const state = this.liveInteraction(applicationId, token);
    this.recordInteractionResponse(state, 'followup', body);
    return this.message(state.channelId, body);
  }

  interactionEditOriginal(applicationId: string, token: string, body: unknown): unknown {
    const state = this.liveInteraction(applicationId, token);
    this.recordInteractionResponse(state, 'edit-original', body);
    return this.message(state.channelId, body);
  }

  private recordInteractionResponse(
    state: InteractionState,
    kind: InteractionResponseRecord['kind'],
    data: unknown,
    type?: number,
  ) {
    const record: InteractionResponseRecord = {
      at: Date.now(),
      interactionId: state.id,
      kind,
      type,
      data,
      latencyMs: Date.now() - state.sentAt,
    };
    this.recorder.interactionResponses.push(record);
    return record;
  }

  private message(channelId: string, body: unknown, loading = false) {
    const b = (body ?? {}) as Record<string, unknown>;
    return {
      id: this.world.nextId(),
      type: 0,
      channel_id: channelId,
      author: { ...this.world.botUser, bot: true },
      content: loading ? '' : (b.content ?? ''),
      // Embeds a bot sends are always rich embeds; Discord says so in `type`.
      embeds: Array.isArray(b.embeds) ? b.embeds.map((e: object) => ({ ...e, type: 'rich' })) : [],
      components: b.components ?? [],
      attachments: [],
      mentions: [],
      mention_roles: [],
      mention_everyone: false,
      pinned: false,
      tts: false,
      flags: (Number(b.flags) || 0) | (loading ? MessageFlags.Loading : 0),
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      webhook_id: this.applicationId,
      application_id: this.applicationId,
    };
  }

  createMessage(channelId: string, body: unknown): unknown {
    const b = (body ?? {}) as Record<string, unknown>;
    if (!b.content && !(Array.isArray(b.embeds) && b.embeds.length))
      throw discordError(400, 50006, 'Cannot send an empty message');
    return this.message(channelId, body);
  }

  overwriteCommands(applicationId: string, guildId: string | undefined, commands: Record<string, unknown>[]) {
    if (applicationId !== this.applicationId) throw discordError(403, 50001, 'Missing Access');
    const stored = commands.map((c) => ({
      id: this.world.nextId(),
      application_id: applicationId,
      guild_id: guildId,
      version: this.world.nextId(),
      type: 1,
      ...c,
      // Sent as a string or a number; Discord returns the bit set as a string.
      default_member_permissions:
        c.default_member_permissions === undefined || c.default_member_permissions === null
          ? null
          : String(c.default_member_permissions),
    }));
    this.commandStore.set(guildId ?? '', stored);
    return stored;
  }

  commands(applicationId: string, guildId: string | undefined) {
    if (applicationId !== this.applicationId) throw discordError(403, 50001, 'Missing Access');
    return this.commandStore.get(guildId ?? '') ?? [];
  }

  guildObject(guild: Guild) {
    return guildPayload(this.world, guild);
  }

  changeMemberRole(guild: Guild, userId: string, roleId: string, change: 'add' | 'remove'): void {
    const member = this.world.member(guild, userId);
    if (!member) throw discordError(404, 10007, 'Unknown Member');
    if (!this.world.hasRole(guild, roleId)) throw discordError(404, 10011, 'Unknown Role');
    const roles = new Set(member.roles);
    if (change === 'add') roles.add(roleId);
    else roles.delete(roleId);
    guild.memberRoles.set(userId, [...roles]);
    this.gateway.dispatchToGuild(guild.id, 'GUILD_MEMBER_UPDATE', {
      guild_id: guild.id,
      ...this.world.member(guild, userId),
    });
  }

  fault(shardId: number, fault: GatewayFault, shardCount?: number): number {
    return this.gateway.fault(shardId, fault, shardCount);
  }

  async stop(): Promise<void> {
    this.gateway.closeAll();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
