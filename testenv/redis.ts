import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { ensureDebianPackage, requireExecutable } from './debian-packages.js';
import { freePort } from './ports.js';
import { startProcess, waitUntil, type ManagedProcess } from './processes.js';
import { makeTempDir } from './tempdir.js';

export interface RedisServer {
  /** The loopback URL, with the password when there is one: never print it. */
  readonly url: string;
  readonly port: number;
  /** Stops the server but keeps its port, so start() brings the same URL back (outage tests). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its folder. */
  close(): Promise<void>;
}

async function ping(port: number, password: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.setTimeout(1000);
    socket.on('connect', () => socket.write(`${password ? `AUTH ${password}\r\n` : ''}PING\r\n`));
    let reply = '';
    socket.on('data', (data) => {
      reply += data.toString();
      if (!reply.includes('+PONG') && !reply.includes('-')) return; // "+OK" of AUTH so far
      socket.destroy();
      resolve(reply.includes('+PONG'));
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** The redis-server every test Redis runs: SHARDWARDEN_REDIS_SERVER, else Debian's (installed when missing). */
export function redisServerBinary(): string {
  return process.env.SHARDWARDEN_REDIS_SERVER
    ? requireExecutable('SHARDWARDEN_REDIS_SERVER', process.env.SHARDWARDEN_REDIS_SERVER)
    : ensureDebianPackage('redis-server', 'redis-server');
}

export interface RedisArgs {
  port: number;
  dir: string;
  persistent?: boolean;
  host?: string;
  /** A config file holding `requirepass`: on the command line, ps would show the password. */
  authConfig?: string;
}

/**
 * redis-server's arguments. With `host` it also listens there, and then only with a password
 * (protected mode stays on): anything that can reach that address must authenticate.
 */
export function redisServerArgs(a: RedisArgs): string[] {
  if (a.host && !a.authConfig) throw new Error(`redis on ${a.host}: a password (authConfig) is required`);
  return [
    ...(a.authConfig ? [a.authConfig] : []),
    '--port',
    String(a.port),
    '--bind',
    '127.0.0.1',
    ...(a.host ? [a.host] : []),
    '--dir',
    a.dir,
    '--save',
    '',
    ...(a.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
  ];
}

/**
 * A throwaway redis-server on a free loopback port. Without persistence by default; with
 * `persistent`, an append-only file keeps the data across stop()/start() (outage tests). With
 * `host`, it also listens there (a real node's pods reach the host at its bridge address) and
 * requires a random password, which `url` (still the loopback one) carries.
 */
export async function startRedis(
  options: { persistent?: boolean; host?: string } = {},
): Promise<RedisServer> {
  const binary = redisServerBinary();
  const dir = makeTempDir('redis');
  const port = await freePort();
  const password = options.host ? randomBytes(24).toString('hex') : undefined;
  let authConfig: string | undefined;
  if (password) {
    authConfig = join(dir.path, 'auth.conf');
    writeFileSync(authConfig, `requirepass ${password}\n`, { mode: 0o600 });
  }
  let proc: ManagedProcess | undefined;
  const server: RedisServer = {
    url: `redis://${password ? `:${password}@` : ''}127.0.0.1:${port}`,
    port,
    async start() {
      if (proc && !proc.exited()) return;
      proc = startProcess(
        'redis-server',
        binary,
        redisServerArgs({
          port,
          dir: dir.path,
          persistent: options.persistent,
          host: options.host,
          authConfig,
        }),
        join(dir.path, 'redis.log'),
      );
      await waitUntil('redis PING', () => ping(port, password), { process: proc, timeoutMs: 15_000 });
    },
    async stop() {
      await proc?.stop();
    },
    async close() {
      await proc?.stop();
      dir.remove();
    },
  };
  await server.start();
  return server;
}
