// Who a bot process works for: the DiscordBot (namespace and name, which scope its Redis keys)
// and the Discord application (which scopes the identify and REST budgets).
import {
  botRef,
  BotRefError,
  DEFAULT_NAMESPACE,
  EVENT_PARTITIONS,
  isDiscordId,
  type BotRef,
} from '../queues/queue-names.js';
import { ENV } from '../runtime-contract.js';
import { ConfigError, type EnvReader } from './env-reader.js';

export interface BotIdentity {
  bot: BotRef;
  /** Absent when started outside the operator: budgets are then the bot's own. */
  applicationId?: string;
  /** Whether the keys of releases before namespaced keys are this bot's (ENV.legacyKeys). */
  legacyKeys: boolean;
  /** Event partitions (ENV.eventPartitions): the gateway writes them, the workers consume them. */
  eventPartitions: number;
}

export function readBotIdentity(read: EnvReader): BotIdentity {
  const name = read.required(ENV.botName);
  const namespace = read.optional(ENV.botNamespace) ?? DEFAULT_NAMESPACE;
  let bot: BotRef;
  try {
    bot = botRef(namespace, name);
  } catch (err) {
    if (!(err instanceof BotRefError)) throw err;
    throw new ConfigError(`${err.field === 'namespace' ? ENV.botNamespace : ENV.botName}: ${err.message}`, {
      cause: err,
    });
  }
  const applicationId = read.optional(ENV.applicationId);
  if (applicationId !== undefined && !isDiscordId(applicationId))
    throw new ConfigError(`${ENV.applicationId}="${applicationId}" is not a Discord id`);
  const legacyKeys = read.optional(ENV.legacyKeys) === '1';
  const eventPartitions = read.int(ENV.eventPartitions, 1, EVENT_PARTITIONS.default, EVENT_PARTITIONS.max);
  return {
    bot,
    ...(applicationId === undefined ? {} : { applicationId }),
    legacyKeys,
    eventPartitions,
  };
}
