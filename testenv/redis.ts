import { createConnection } from 'node:net';
import { join } from 'node:path';
import { ensureDebianPackage, requireExecutable } from './debian-packages.js';
import { freePort } from './ports.js';
import { startProcess, waitUntil, type ManagedProcess } from './processes.js';
import { makeTempDir } from './tempdir.js';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Stops the server but keeps its port, so start() brings the same URL back (outage tests). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its folder. */
  close(): Promise<void>;
}

async function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.setTimeout(1000);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
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

/**
 * A throwaway redis-server on a free loopback port. Without persistence by default; with
 * `persistent`, an append-only file keeps the data across stop()/start() (outage tests). With
 * `host`, it also listens there (a real node's pods reach the host at its address); `url` stays
 * the loopback one.
 */
export async function startRedis(
  options: { persistent?: boolean; host?: string } = {},
): Promise<RedisServer> {
  const binary = redisServerBinary();
  const dir = makeTempDir('redis');
  const port = await freePort();
  let proc: ManagedProcess | undefined;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      if (proc && !proc.exited()) return;
      proc = startProcess(
        'redis-server',
        binary,
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          // Another address than loopback: without a password, protected mode would refuse it.
          ...(options.host ? [options.host, '--protected-mode', 'no'] : []),
          '--dir',
          dir.path,
          '--save',
          '',
          ...(options.persistent
            ? ['--appendonly', 'yes', '--appendfsync', 'always']
            : ['--appendonly', 'no']),
        ],
        join(dir.path, 'redis.log'),
      );
      await waitUntil('redis PING', () => ping(port), { process: proc, timeoutMs: 15_000 });
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
