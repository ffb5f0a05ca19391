// Who a bot process works for: the DiscordBot (namespace and name, which scope its Redis keys)
// and the Discord application (which scopes the identify and REST budgets).
import { botRef, DEFAULT_NAMESPACE, type BotRef } from '../queues/queue-names.js';
import { ENV } from '../runtime-contract.js';
import { ConfigError, type EnvReader } from './env-reader.js';

export interface BotIdentity {
  bot: BotRef;
  /** Absent when started outside the operator: budgets are then the bot's own. */
  applicationId?: string;
}

export function readBotIdentity(read: EnvReader): BotIdentity {
  const name = read.required(ENV.botName);
  const namespace = read.optional(ENV.botNamespace) ?? DEFAULT_NAMESPACE;
  let bot: BotRef;
  try {
    bot = botRef(namespace, name);
  } catch (err) {
    const variable = /namespace/.test((err as Error).message) ? ENV.botNamespace : ENV.botName;
    throw new ConfigError(`${variable}: ${(err as Error).message}`);
  }
  const applicationId = read.optional(ENV.applicationId);
  if (applicationId !== undefined && !/^\d{1,20}$/.test(applicationId))
    throw new ConfigError(`${ENV.applicationId}="${applicationId}" is not a Discord id`);
  return applicationId === undefined ? { bot } : { bot, applicationId };
}
