// Discord REST for bot processes: a normal @discordjs/rest `REST` (API v10) whose requests all
// pass one rate limiter shared through Redis by every process of the bot. See docs/discord-rest.md.
import { DefaultRestOptions, REST } from '@discordjs/rest';
import type { RedisClient } from '../configuration/redis-connection.js';
import { Registry } from 'prom-client';
import { createLogger, type Logger } from '../observability/logger.js';
import { botRef, discordBudgetPrefix, isDiscordId, type BotRef } from '../queues/queue-names.js';
import { limitedMakeRequest } from './limited-request.js';
import { DiscordRestMetrics } from './metrics.js';
import { SharedRestLimiter } from './shared-limiter.js';

export interface DiscordRestOptions {
  bot: BotRef;
  /** The Discord application of the token: its limits are shared with every bot using it. */
  applicationId?: string;
  token: string;
  /** Without the version, e.g. `http://127.0.0.1:1234/api` or `https://discord.com/api`. */
  apiUrl: string;
  redis: RedisClient;
  /** The bot's global limit (requests per second); 50 unless Discord raised it. */
  globalPerSecond?: number;
  registry?: Registry;
  logger?: Logger;
  /** Network timeout of one attempt, not counting the wait for the limiter (15 s). */
  timeoutMs?: number;
  /**
   * The global window is 1 s plus this (50 ms), so requests that leave on time still fit
   * Discord's second when network delays differ (docs/discord-rest.md, "Why the margin").
   */
  globalMarginMs?: number;
}

export { DiscordRestMetrics } from './metrics.js';

// The library's own limits stay on (per-process bucket queues, 429 retries); its global
// limiter and timeout would double-count what the shared limiter does, so they are off.
const NO_LIBRARY_TIMEOUT_MS = 2 ** 31 - 1;

export function createDiscordRest(o: DiscordRestOptions): REST {
  const globalPerSecond = o.globalPerSecond ?? 50;
  const timeoutMs = o.timeoutMs ?? 15_000;
  const marginMs = o.globalMarginMs ?? 50;
  try {
    botRef(o.bot?.namespace, o.bot?.name);
  } catch (err) {
    throw new Error(`createDiscordRest: ${(err as Error).message}`, { cause: err });
  }
  if (o.applicationId !== undefined && !isDiscordId(o.applicationId))
    throw new Error(
      `createDiscordRest: applicationId must be a Discord id, got ${JSON.stringify(o.applicationId)}`,
    );
  if (typeof o.token !== 'string' || o.token.trim() === '')
    throw new Error('createDiscordRest: token must be a non-empty string');
  let api: URL;
  try {
    api = new URL(o.apiUrl);
    if (api.protocol !== 'http:' && api.protocol !== 'https:') throw new Error('protocol');
  } catch {
    throw new Error('createDiscordRest: apiUrl must be an http(s) URL such as https://discord.com/api');
  }
  if (!Number.isInteger(globalPerSecond) || globalPerSecond < 1)
    throw new Error(`createDiscordRest: globalPerSecond must be an integer >= 1, got ${globalPerSecond}`);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new Error(`createDiscordRest: timeoutMs must be a positive number, got ${timeoutMs}`);
  if (!Number.isFinite(marginMs) || marginMs < 0 || marginMs > 1000)
    throw new Error(`createDiscordRest: globalMarginMs must be between 0 and 1000, got ${marginMs}`);
  if (!o.redis) throw new Error('createDiscordRest: redis (an ioredis client) is required');

  const logger =
    o.logger ?? createLogger('discord-rest', 'info', { bot: o.bot.name, namespace: o.bot.namespace });
  const apiBase = api.pathname.replace(/\/+$/, '');
  const rest = new REST({
    api: o.apiUrl.replace(/\/+$/, ''),
    version: '10',
    globalRequestsPerSecond: Number.POSITIVE_INFINITY,
    timeout: NO_LIBRARY_TIMEOUT_MS,
    makeRequest: limitedMakeRequest({
      limiter: new SharedRestLimiter(o.redis, {
        keyPrefix: discordBudgetPrefix(o.bot, o.applicationId),
        globalPerSecond,
        marginMs,
        probeMs: timeoutMs,
      }),
      metrics: new DiscordRestMetrics(o.registry ?? new Registry()),
      logger,
      versionedPrefix: `${apiBase}/v10`,
      unversionedPrefix: apiBase,
      timeoutMs,
      send: DefaultRestOptions.makeRequest,
    }),
  });
  return rest.setToken(o.token);
}
