// The extension point of the worker (the Brain). A bot author writes a module that default-exports
// `defineBotModule({...})`, builds it into an image on top of Shardwarden's, and lists it in
// SHARDWARDEN_HANDLER_MODULES; the worker loads it at start. The token-gating domain
// (bot/token-gating/) is written the same way, as the reference example. See docs/workers.md.
import type { REST } from '@discordjs/rest';
import type {
  APIChatInputApplicationCommandInteraction,
  APIEmbed,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { FastifyInstance } from 'fastify';
import type { RedisClient } from '../../configuration/redis-connection.js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ChainReader } from '../../chain/index.js';
import type { Database } from '../../database/index.js';
import type { InteractionContext } from '../interactions/interaction-context.js';

/** What a handler may use. Everything that outlives a job lives in Redis or Postgres, never here. */
export interface WorkerServices {
  botName: string;
  /** The bot's application id (from Discord at start). */
  applicationId: string;
  logger: Logger;
  /** Discord REST with the bot's shared, Redis-backed rate limit. */
  rest: REST;
  /** The bot's Redis; use `key(...)` for names so every key shares the bot's hash slot. */
  redis: RedisClient;
  key(...parts: (string | number)[]): string;
  /** Postgres, when DATABASE_URL is set. */
  db?: Database;
  /** Chain reads, when CHAIN_RPC_URLS is set. */
  chain?: ChainReader;
  tasks: TaskScheduler;
  /** Register your own metrics here; they appear on the worker's /metrics. */
  metrics: Registry;
  /** Base URL of the worker's public HTTP routes (links sent to users). */
  publicUrl: string;
  /** Module settings from the environment (SHARDWARDEN_<anything>), read at start. */
  env: NodeJS.ProcessEnv;
}

export interface TaskScheduler {
  /** Adds a task job; `jobId` de-duplicates (a second add with the same id is ignored). */
  enqueue(name: string, data: unknown, options?: { jobId?: string; delayMs?: number }): Promise<void>;
  /** Creates or updates a repeating task (one per id, whichever worker calls it). */
  repeat(id: string, everyMs: number, name: string, data: unknown): Promise<void>;
  /** Removes a repeating task. */
  cancel(id: string): Promise<void>;
}

/** What a command answers. A string is shorthand for `{ content }`. */
export type CommandReply = string | { content?: string; embeds?: APIEmbed[]; ephemeral?: boolean };

export interface CommandHandler {
  /** The slash command as `register-commands` installs it. */
  definition: RESTPostAPIChatInputApplicationCommandsJSONBody;
  /**
   * `true` for anything slow (chain, heavy SQL): the worker acknowledges with a deferred response
   * at once and edits it with the result. Fast commands are answered directly; a fast command
   * that turns out slow is deferred automatically before Discord's 3-second window closes.
   */
  defer?: boolean;
  /** Replies are visible only to the caller. */
  ephemeral?: boolean;
  /** Seconds a user must wait between two uses (kept in Redis, so it holds across workers). */
  cooldownSeconds?: number;
  /** Only members with Administrator, Manage Server or Manage Roles may use it. */
  adminOnly?: boolean;
  execute(interaction: InteractionContext, services: WorkerServices): Promise<CommandReply>;
}

/** A forwarded gateway dispatch (GUILD_CREATE, GUILD_MEMBER_REMOVE, ...). */
export interface DispatchEvent<T = unknown> {
  type: string;
  payload: T;
  shardId: number;
  receivedAt: number;
}

export interface EventHandler {
  /** Dispatch type as Discord names it; it must also be listed in the DiscordBot's spec.events. */
  type: string;
  /** Throwing retries the job with back-off (at-least-once: make handlers idempotent). */
  handle(event: DispatchEvent, services: WorkerServices): Promise<void>;
}

export interface TaskHandler {
  name: string;
  /** Throwing retries the task with back-off, then keeps it as failed. */
  run(data: unknown, services: WorkerServices): Promise<void>;
}

export interface BotModule {
  name: string;
  commands?: CommandHandler[];
  events?: EventHandler[];
  tasks?: TaskHandler[];
  /** Public HTTP routes (for example a verification page), served on the worker's public port. */
  routes?(app: FastifyInstance, services: WorkerServices): void | Promise<void>;
  /** Runs once per worker process at start (after migrations, before jobs are taken). */
  setup?(services: WorkerServices): Promise<void>;
}

/** Identity function that gives a module its types. */
export function defineBotModule(module: BotModule): BotModule {
  return module;
}

/**
 * An error whose message is meant for the user: it is sent as the (ephemeral) reply, the job
 * counts as completed, and nothing is retried.
 */
export class UserFacingError extends Error {}

export type ChatInputInteraction = APIChatInputApplicationCommandInteraction;
