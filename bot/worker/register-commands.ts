// `shardwarden register-commands`: installs the slash commands of the configured handler
// modules through REST (globally, or in one guild for testing, which applies at once).
// A bulk overwrite: commands no module defines any more are removed.
import { REST } from '@discordjs/rest';
import { Routes } from 'discord.js';
import { ConfigError, EnvReader } from '../configuration/env-reader.js';
import { ENV } from '../runtime-contract.js';
import { WORKER_ENV } from './config.js';
import { HandlerRegistry } from './handlers/handler-registry.js';
import { DEFAULT_HANDLER_MODULES, loadHandlerModules } from './handlers/module-loader.js';

export async function registerCommands(env: NodeJS.ProcessEnv): Promise<{ scope: string; names: string[] }> {
  const read = new EnvReader(env);
  const token = read.required(ENV.discordToken);
  const apiUrl = read.httpUrl(ENV.discordApiUrl, 'https://discord.com/api');
  const guildId = read.optional(WORKER_ENV.commandsGuildId);
  if (guildId !== undefined && !/^\d{1,20}$/.test(guildId))
    throw new ConfigError(`${WORKER_ENV.commandsGuildId}="${guildId}" is not a Discord id`);
  const registry = new HandlerRegistry(
    await loadHandlerModules(read.list(WORKER_ENV.handlerModules, DEFAULT_HANDLER_MODULES)),
  );
  const rest = new REST({ version: '10', api: apiUrl }).setToken(token);
  const applicationId =
    read.optional(ENV.applicationId) ?? ((await rest.get(Routes.user('@me'))) as { id: string }).id;
  const body = registry.commandDefinitions();
  const route = guildId
    ? Routes.applicationGuildCommands(applicationId, guildId)
    : Routes.applicationCommands(applicationId);
  const result = (await rest.put(route, { body })) as { name: string }[];
  return { scope: guildId ? `guild ${guildId}` : 'global', names: result.map((c) => c.name) };
}

export async function runRegisterCommands(env: NodeJS.ProcessEnv): Promise<void> {
  try {
    const { scope, names } = await registerCommands(env);
    console.log(JSON.stringify({ msg: 'commands registered', scope, commands: names }));
  } catch (err) {
    console.error(`register-commands: ${(err as Error).message}`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
}
