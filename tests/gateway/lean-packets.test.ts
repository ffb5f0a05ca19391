import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { leanPacket } from '../../bot/gateway/cluster/lean-packets.js';
import { discordJs13StandIn } from '../../bot/gateway/sharding/load-kurasuta.js';

// The built module (npx tsc -p tsconfig.build.json), as the gateway process loads it.
const LOADER = resolve('dist/bot/gateway/sharding/load-kurasuta.js');
const built = (path: string) => JSON.stringify(resolve('dist/bot/gateway', path));

describe('what discord.js gets to handle in the Ear', () => {
  test('READY without its guild list (no Guild objects); the packet itself is left alone', () => {
    const ready = { t: 'READY', s: 1, d: { user: { id: '1' }, guilds: [{ id: '2', unavailable: true }] } };
    expect(leanPacket(ready)).toEqual({ t: 'READY', s: 1, d: { user: { id: '1' }, guilds: [] } });
    // discord.js's readiness tracking reads the guild list from the same payload.
    expect(ready.d.guilds).toHaveLength(1);
  });

  test('RESUMED passes; GUILD_CREATE, MESSAGE_CREATE and the rest are not handled', () => {
    const resumed = { t: 'RESUMED', d: {} };
    expect(leanPacket(resumed)).toBe(resumed);
    for (const t of ['GUILD_CREATE', 'MESSAGE_CREATE', 'INTERACTION_CREATE', 'GUILD_MEMBER_ADD'])
      expect(leanPacket({ t, d: { id: '1' } })).toBeUndefined();
  });
});

describe('Kurasuta without its bundled discord.js 13', () => {
  // In a real Node process (jest has its own module registry, which the stand-in does not touch).
  test('Kurasuta loads with the stand-in, and discord.js 13 is never loaded', () => {
    const script = `
      import { createRequire } from 'node:module';
      const { ShardingManager, discordJs13StandIn } = await import(${JSON.stringify(LOADER)});
      const require = createRequire(${JSON.stringify(LOADER)});
      const v13 = createRequire(require.resolve('kurasuta')).resolve('discord.js');
      console.log(JSON.stringify({
        manager: typeof ShardingManager,
        standIn: require.cache[v13]?.exports === discordJs13StandIn,
        v13Modules: Object.keys(require.cache).filter((p) => p.includes('kurasuta/node_modules/discord.js/')).length,
      }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script]).toString();
    expect(JSON.parse(out)).toEqual({ manager: 'function', standIn: true, v13Modules: 1 });
  });

  test('errors relayed over Kurasuta IPC keep name, message and stack', () => {
    const err = discordJs13StandIn.Util.makeError({
      name: 'TypeError',
      message: 'boom',
      stack: 'TypeError: boom\n  at x',
    });
    expect(err).toBeInstanceOf(Error);
    expect([err.name, err.message, err.stack]).toEqual(['TypeError', 'boom', 'TypeError: boom\n  at x']);
  });
});

describe('what a cluster process loads', () => {
  // Every cluster process loads its modules at a cold start, all at once: what it does not use
  // is start-up time of every shard (docs/gateway.md, "Cold start"). In a real Node process.
  test('not the HTTP server (fastify): only the primary serves the probes', () => {
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(${built('main.js')});
      const fastify = () => Object.keys(require.cache).some((p) => p.includes('/node_modules/fastify/'));
      await import(${built('main.js')});
      await import(${built('cluster/gateway-cluster.js')});
      const cluster = fastify();
      await import(${JSON.stringify(resolve('dist/bot/observability/http-server.js'))});
      console.log(JSON.stringify({ cluster, primary: fastify() }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script]).toString();
    expect(JSON.parse(out)).toEqual({ cluster: false, primary: true });
  });
});
