// Loads the handler modules named in SHARDWARDEN_HANDLER_MODULES: built-in ones by a
// `shardwarden:` name, the bot author's by file path or package name (resolved from the
// working directory, so an image that adds /app/handlers/index.js can name that path).
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BotModule } from './bot-module.js';

const BUILTIN: Record<string, () => Promise<BotModule>> = {
  'shardwarden:token-gating': async () => (await import('../../token-gating/module.js')).tokenGatingModule,
};

export const DEFAULT_HANDLER_MODULES = ['shardwarden:token-gating'];

export class ModuleLoadError extends Error {}

export async function loadHandlerModules(specifiers: string[], cwd = process.cwd()): Promise<BotModule[]> {
  const modules: BotModule[] = [];
  for (const spec of specifiers) {
    if (spec.startsWith('shardwarden:')) {
      const load = BUILTIN[spec];
      if (!load)
        throw new ModuleLoadError(
          `SHARDWARDEN_HANDLER_MODULES: unknown built-in module "${spec}" (known: ${Object.keys(BUILTIN).join(', ')})`,
        );
      modules.push(await load());
      continue;
    }
    const target = spec.startsWith('.') || isAbsolute(spec) ? pathToFileURL(resolve(cwd, spec)).href : spec;
    let loaded: { default?: unknown };
    try {
      loaded = (await import(target)) as { default?: unknown };
    } catch (err) {
      throw new ModuleLoadError(
        `SHARDWARDEN_HANDLER_MODULES: cannot load "${spec}": ${(err as Error).message}`,
      );
    }
    const m = loaded.default as BotModule | undefined;
    if (!m || typeof m !== 'object' || typeof m.name !== 'string')
      throw new ModuleLoadError(
        `SHARDWARDEN_HANDLER_MODULES: "${spec}" must default-export defineBotModule({ name, ... })`,
      );
    modules.push(m);
  }
  return modules;
}
