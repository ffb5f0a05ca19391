import { HandlerRegistry } from '../../bot/worker/handlers/handler-registry.js';
import { defineBotModule } from '../../bot/worker/handlers/bot-module.js';
import { loadHandlerModules } from '../../bot/worker/handlers/module-loader.js';
import { parseWorkerConfig } from '../../bot/worker/config.js';

const cmd = (name: string) => ({ definition: { name, description: name }, execute: async () => name });

describe('handler registry', () => {
  test('commands, events and tasks by name; several modules may handle one event', () => {
    const a = defineBotModule({
      name: 'a',
      commands: [cmd('x')],
      events: [{ type: 'GUILD_CREATE', handle: async () => {} }],
    });
    const b = defineBotModule({
      name: 'b',
      commands: [cmd('y')],
      events: [{ type: 'GUILD_CREATE', handle: async () => {} }],
      tasks: [{ name: 't', run: async () => {} }],
    });
    const r = new HandlerRegistry([a, b]);
    expect(r.command('x')?.definition.name).toBe('x');
    expect(r.command('z')).toBeUndefined();
    expect(r.eventHandlers('GUILD_CREATE')).toHaveLength(2);
    expect(r.task('t')).toBeDefined();
    expect(r.commandDefinitions().map((d) => d.name)).toEqual(['x', 'y']);
  });

  test('conflicts name both modules', () => {
    expect(
      () =>
        new HandlerRegistry([
          defineBotModule({ name: 'a', commands: [cmd('x')] }),
          defineBotModule({ name: 'b', commands: [cmd('x')] }),
        ]),
    ).toThrow('command "/x" is defined by both "a" and "b"');
    expect(
      () =>
        new HandlerRegistry([
          defineBotModule({ name: 'a', events: [{ type: 'guildCreate', handle: async () => {} }] }),
        ]),
    ).toThrow('module "a" handles "guildCreate", which is not a dispatch name');
  });

  test('module loading errors name the setting and the module', async () => {
    await expect(loadHandlerModules(['shardwarden:nope'])).rejects.toThrow(
      'unknown built-in module "shardwarden:nope"',
    );
    await expect(loadHandlerModules(['./does-not-exist.js'])).rejects.toThrow(
      'cannot load "./does-not-exist.js"',
    );
    const builtin = await loadHandlerModules(['shardwarden:token-gating']);
    expect(builtin.map((m) => m.name)).toEqual(['token-gating']);
  });
});

describe('worker configuration', () => {
  const base = { SHARDWARDEN_BOT_NAME: 'b', DISCORD_TOKEN: 't', REDIS_URL: 'redis://127.0.0.1:6379' };
  test('defaults', () => {
    const c = parseWorkerConfig(base);
    expect(c).toMatchObject({
      eventConcurrency: 50,
      interactionConcurrency: 50,
      httpPort: 8080,
      publicHttpPort: 8081,
      restGlobalPerSecond: 50,
      migrations: 'apply',
      handlerModules: ['shardwarden:token-gating'],
      chainRpcUrls: [],
      discordApiUrl: 'https://discord.com/api',
      publicTrustProxy: ['loopback', 'linklocal', 'uniquelocal'],
    });
    expect(
      parseWorkerConfig({ ...base, SHARDWARDEN_PUBLIC_TRUST_PROXY: 'none' }).publicTrustProxy,
    ).toBeUndefined();
    expect(
      parseWorkerConfig({ ...base, SHARDWARDEN_PUBLIC_TRUST_PROXY: '203.0.113.0/24, 2001:db8::1' })
        .publicTrustProxy,
    ).toEqual(['203.0.113.0/24', '2001:db8::1']);
  });
  test.each([
    [{ DISCORD_TOKEN: '' }, 'DISCORD_TOKEN is required but not set'],
    [{ DATABASE_URL: 'mysql://u:pw@h/db' }, 'DATABASE_URL must be a postgres:// or postgresql:// URL'],
    [{ CHAIN_RPC_URLS: 'http://a,ws://key@b' }, 'CHAIN_RPC_URLS: entry 2 is not an http(s) URL'],
    [{ SHARDWARDEN_MIGRATIONS: 'maybe' }, 'SHARDWARDEN_MIGRATIONS="maybe" must be apply or skip'],
    [{ CHAIN_MULTICALL_ADDRESS: '0x12' }, 'CHAIN_MULTICALL_ADDRESS="0x12" is not'],
    [
      { SHARDWARDEN_REST_GLOBAL_PER_SECOND: '0' },
      'SHARDWARDEN_REST_GLOBAL_PER_SECOND="0" must be an integer >= 1',
    ],
    [
      { SHARDWARDEN_PUBLIC_TRUST_PROXY: 'ingress.example' },
      'SHARDWARDEN_PUBLIC_TRUST_PROXY="ingress.example" must be none or a comma-separated list',
    ],
  ])('%j → %s', (extra, message) => {
    expect(() => parseWorkerConfig({ ...base, ...extra })).toThrow(message);
  });
  test('secret values are never echoed', () => {
    // The error names the variable (so it did throw) and leaves the value out.
    const message = (env: Record<string, string>) => {
      try {
        parseWorkerConfig({ ...base, ...env });
      } catch (err) {
        return (err as Error).message;
      }
      return '(accepted)';
    };
    expect(message({ DATABASE_URL: 'mysql://u:hunter2@h/db' })).toBe(
      'DATABASE_URL must be a postgres:// or postgresql:// URL',
    );
    expect(message({ CHAIN_RPC_URLS: 'ftp://apikey-123@x' })).toBe(
      'CHAIN_RPC_URLS: entry 1 is not an http(s) URL',
    );
  });
});
