// Loads Kurasuta without the discord.js v13 it bundles. Kurasuta 3.0.2 requires its own
// discord.js 13 in every module, but uses only `Util.makeError` (rebuilding errors that arrive
// over IPC) and two defaults (`Intents.FLAGS.GUILDS`, `Client`) that the gateway always passes
// itself. Loading discord.js 13 for that costs RSS in the primary and in every cluster process
// (which run no discord.js at all: their client is the EarClient over @discordjs/ws), so its
// module slot is filled with a stand-in providing exactly those, before Kurasuta is first
// required. Every import of Kurasuta in the gateway goes through this module.
import { createRequire, Module } from 'node:module';
import type * as Kurasuta from 'kurasuta';

const require = createRequire(import.meta.url);

/** What Kurasuta 3.0.2 reads from discord.js 13 (checked by the gateway tests, which use its IPC). */
export const discordJs13StandIn = {
  Util: {
    // discord.js 13's Util.makeError, which Kurasuta calls with error info received over IPC.
    makeError(info: { name: string; message: string; stack?: string }): Error {
      const err = new Error(info.message);
      err.name = info.name;
      err.stack = info.stack;
      return err;
    },
  },
  Intents: { FLAGS: { GUILDS: 1 } },
  Client: class {
    constructor() {
      throw new Error(
        'Kurasuta was started without a client class (the gateway always passes its EarClient)',
      );
    }
  },
};

function installStandIn(): void {
  const fromKurasuta = createRequire(require.resolve('kurasuta'));
  let path: string;
  try {
    path = fromKurasuta.resolve('discord.js');
  } catch {
    return; // Kurasuta resolves no discord.js of its own: nothing to replace.
  }
  // Only Kurasuta's own nested copy: never a discord.js 14 something else loads.
  if (path === require.resolve('discord.js') || require.cache[path]) return;
  const m = new Module(path);
  m.filename = path;
  m.loaded = true;
  m.exports = discordJs13StandIn;
  require.cache[path] = m;
}

installStandIn();
const kurasuta = require('kurasuta') as typeof Kurasuta;

export const { ShardingManager, Cluster, BaseCluster } = kurasuta;
export const { startCluster } =
  require('kurasuta/dist/Util/Util.js') as typeof import('kurasuta/dist/Util/Util.js');
