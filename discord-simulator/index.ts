export {
  DiscordSimulator,
  DEFAULT_GATEWAY_OPTIONS,
  type SimulatorOptions,
  type InjectedInteraction,
} from './simulator.js';
export { CloseCode, Op, type GatewayFault, type GatewayOptions } from './gateway/server.js';
export { Intent, PRIVILEGED_INTENTS } from './gateway/intents.js';
export { messagePayload, type InteractionSpec } from './gateway/payloads.js';
export { shardOfGuild } from './snowflake.js';
export type * from './recorder.js';
export type { Guild, GuildSize, User } from './world.js';
