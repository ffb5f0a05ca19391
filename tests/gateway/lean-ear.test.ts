import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { discordJs13StandIn } from '../../bot/gateway/sharding/load-kurasuta.js';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { makeTempDir, startRedis } from '../../testenv/index.js';
import { gatewayEnv, startGateway, waitReady } from './harness.js';

// The built module (npx tsc -p tsconfig.build.json), as the gateway process loads it.
const LOADER = resolve('dist/bot/gateway/sharding/load-kurasuta.js');
const built = (path: string) => JSON.stringify(resolve('dist/bot/gateway', path));
const DISCORD_JS = `${pathToFileURL(resolve('node_modules/discord.js')).href}/`;

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
  test('no HTTP framework: the probes are plain node:http, and fastify is loaded by neither process', () => {
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(${built('main.js')});
      const fastify = () => Object.keys(require.cache).some((p) => p.includes('/node_modules/fastify/'));
      await import(${built('main.js')});
      await import(${built('cluster/gateway-cluster.js')});
      await import(${JSON.stringify(resolve('dist/bot/observability/http-server.js'))});
      console.log(JSON.stringify({ fastify: fastify() }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script]).toString();
    expect(JSON.parse(out)).toEqual({ fastify: false });
  });

  test('not discord.js: its client, managers and structures are never loaded', () => {
    // A load hook sees every module either loader (import or require) loads, so nothing on the
    // cluster's path escapes it (a mere require.resolve does not load); discord.js itself is
    // loaded last as a control.
    const script = `
      import { registerHooks } from 'node:module';
      const loaded = [];
      registerHooks({ load: (url, ctx, next) => (loaded.push(url), next(url, ctx)) });
      // discord.js 14 (Kurasuta's nested discord.js 13 is replaced before it loads: test above).
      const discordJs = () => loaded.some((u) => u.startsWith(${JSON.stringify(DISCORD_JS)}));
      await import(${built('main.js')});
      await import(${built('cluster/gateway-cluster.js')});
      const { EarClient } = await import(${built('cluster/ear-client.js')});
      new EarClient({ intents: 1, apiUrl: 'http://127.0.0.1:1', shards: [0], shardCount: 1 });
      const cluster = discordJs();
      const ws = loaded.some((u) => u.includes('/node_modules/@discordjs/ws/'));
      await import('discord.js');
      console.log(JSON.stringify({ cluster, ws, control: discordJs() }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: resolve('.'),
    }).toString();
    expect(JSON.parse(out)).toEqual({ cluster: false, ws: true, control: true });
  });
});

describe('a running gateway pod', () => {
  /** Every module each process of a pod (clustersPerPod as given) loaded, by role. */
  async function loadedModules(clustersPerPod: number): Promise<Record<string, string[]>> {
    const dir = makeTempDir('lean-ear-modules');
    // Preloaded into the pod's processes: records every module loaded, written at exit.
    const preload = join(dir.path, 'record-modules.mjs');
    writeFileSync(
      preload,
      `import cluster from 'node:cluster';
       import { writeFileSync } from 'node:fs';
       import { registerHooks } from 'node:module';
       const loaded = [];
       registerHooks({ load: (url, ctx, next) => (loaded.push(url), next(url, ctx)) });
       process.on('exit', () => writeFileSync(
         ${JSON.stringify(dir.path)} + '/' + (cluster.isPrimary ? 'primary' : 'cluster') + '-' + process.pid + '.json',
         JSON.stringify(loaded)));`,
    );
    const sim = await DiscordSimulator.start({ seed: 7, guilds: 20 });
    const redis = await startRedis();
    try {
      const gw = await startGateway(
        gatewayEnv(sim, redis.url, 0, {
          SHARDWARDEN_CLUSTERS_PER_POD: String(clustersPerPod),
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(preload).href}`,
        }),
      );
      try {
        await waitReady(gw);
      } finally {
        // SIGTERM: the clusters flush and the processes exit on their own, writing their lists.
        await gw.proc.stop(60_000);
      }
      const lists: Record<string, string[]> = {};
      for (const f of readdirSync(dir.path).filter((f) => f.endsWith('.json')))
        (lists[f.split('-')[0]!] ??= []).push(
          ...(JSON.parse(readFileSync(join(dir.path, f), 'utf8')) as string[]),
        );
      return lists;
    } finally {
      await sim.stop();
      await redis.close();
      dir.remove();
    }
  }
  const pkg = (name: string) => `${pathToFileURL(resolve('node_modules', name)).href}/`;
  const count = (list: string[], prefix: string) => list.filter((u) => u.startsWith(prefix)).length;

  test('of one cluster: a single process, which loads @discordjs/ws, and neither discord.js nor Kurasuta', async () => {
    const lists = await loadedModules(1);
    expect(Object.keys(lists)).toEqual(['primary']);
    const loaded = lists.primary!;
    expect({
      discordJs: count(loaded, DISCORD_JS),
      kurasuta: count(loaded, pkg('kurasuta')),
      fastify: count(loaded, pkg('fastify')),
      ws: count(loaded, pkg('@discordjs/ws')) > 0,
    }).toEqual({ discordJs: 0, kurasuta: 0, fastify: 0, ws: true });
  });

  test('of two clusters: its cluster processes load @discordjs/ws and no discord.js; its primary no client, queue or Redis library', async () => {
    const lists = await loadedModules(2);
    const ws = pkg('@discordjs/ws');
    expect(Object.keys(lists).sort()).toEqual(['cluster', 'primary']);
    expect({ cluster: count(lists.cluster!, DISCORD_JS), ws: count(lists.cluster!, ws) > 0 }).toEqual({
      cluster: 0,
      ws: true,
    });
    // The primary runs no client and no queue: what it does not use, it does not load.
    const unused = [DISCORD_JS, ws, pkg('ioredis'), pkg('bullmq'), pkg('fastify')];
    expect(Object.fromEntries(unused.map((p) => [p, count(lists.primary!, p)]))).toEqual(
      Object.fromEntries(unused.map((p) => [p, 0])),
    );
  });
});
