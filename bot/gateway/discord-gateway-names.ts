// Intent and dispatch names from the discord-api-types that discord.js itself uses, loaded
// without discord.js: the gateway pod's primary and the operator read them but never run a
// client, and discord.js would cost each ~15 MB.
import { createRequire } from 'node:module';
import type { GatewayCloseCodes as CloseCodes, GatewayIntentBits as IntentBits } from 'discord.js';

const require = createRequire(import.meta.url);
const types = createRequire(require.resolve('discord.js'))('discord-api-types/v10') as {
  GatewayIntentBits: typeof IntentBits;
  GatewayCloseCodes: typeof CloseCodes;
  GatewayDispatchEvents: Record<string, string>;
};

export const GatewayIntentBits = types.GatewayIntentBits;
export const GatewayCloseCodes = types.GatewayCloseCodes;

/** Every gateway dispatch name Discord documents, as this discord.js knows them, sorted. */
export const DISPATCH_NAMES: readonly string[] = [
  ...new Set(Object.values(types.GatewayDispatchEvents)),
].sort();
