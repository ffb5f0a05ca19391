import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ensureDebianPackage, requireExecutable } from './debian-packages.js';
import { freePort } from './ports.js';
import { startProcess, waitUntil } from './processes.js';
import { makeTempDir } from './tempdir.js';

export interface PostgresServer {
  /** Superuser URL of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The newest Postgres server's bin folder (SHARDWARDEN_POSTGRES_BIN, else Debian's package). */
export function postgresBinDir(): string {
  const override = process.env.SHARDWARDEN_POSTGRES_BIN;
  if (override) {
    requireExecutable('SHARDWARDEN_POSTGRES_BIN', join(override, 'postgres'));
    return override;
  }
  const root = '/usr/lib/postgresql';
  const find = () => {
    try {
      const versions = readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a));
      return versions[0] ? join(root, versions[0], 'bin') : undefined;
    } catch {
      return undefined;
    }
  };
  const existing = find();
  if (existing) return existing;
  ensureDebianPackage('/usr/lib/postgresql', 'postgresql');
  const installed = find();
  if (!installed) throw new Error(`postgresql is installed but no server binaries are under ${root}`);
  return installed;
}

/**
 * The pg_hba.conf line for clients beyond loopback: only the app role (never the superuser),
 * only from `clients` (a real node's pod subnet), only with its password (SCRAM).
 */
export function remoteClientsHba(clients: string): string {
  if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(clients))
    throw new Error(`clients: expected an IPv4 CIDR, got ${clients}`);
  return `host all ${APP_ROLE} ${clients} scram-sha-256\n`;
}

/**
 * A throwaway Postgres cluster (initdb in a temp folder, trust auth on loopback, fsync off).
 * With `remote`, it also listens on `remote.host` and lets the app role in from
 * `remote.clients` with its password (remoteClientsHba); `url` stays the loopback one.
 */
export async function startPostgres(
  options: { remote?: { host: string; clients: string } } = {},
): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const dir = makeTempDir('postgres');
  const data = join(dir.path, 'data');
  const port = await freePort();
  // Postgres refuses to run as root; when we are root, run it as the package's `postgres` user.
  let ids: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    ids = { uid, gid };
    chownSync(dir.path, uid, gid);
  }
  mkdirSync(data);
  if (ids) chownSync(data, ids.uid, ids.gid);
  execFileSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
    {
      stdio: 'pipe',
      ...ids,
    },
  );
  if (options.remote) appendFileSync(join(data, 'pg_hba.conf'), remoteClientsHba(options.remote.clients));
  const proc = startProcess(
    'postgres',
    join(bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir.path,
      '-c',
      `listen_addresses=${['127.0.0.1', ...(options.remote ? [options.remote.host] : [])].join(',')}`,
      '-c',
      'password_encryption=scram-sha-256',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
    ],
    join(dir.path, 'postgres.log'),
    { ...ids },
  );
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await waitUntil(
    'postgres to accept connections',
    async () => {
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
        await client.query('select 1');
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    { process: proc, timeoutMs: 30_000, intervalMs: 200 },
  );
  return {
    url,
    port,
    async close() {
      // SIGTERM is Postgres' "smart" shutdown that waits for clients; SIGINT is "fast".
      proc.child.kill('SIGINT');
      await proc.stop(10_000);
      dir.remove();
    },
  };
}

// A fresh database owned by an ordinary role (no SUPERUSER, no BYPASSRLS), as in production:
// superusers skip row-level security (and the worker refuses to run as one).
export const APP_ROLE = 'shardwarden_app';
/**
 * Random per process (a demo run): loopback's trust auth ignores it, a real node's pods need it
 * (remoteClientsHba); tests also check errors never show it.
 */
export const APP_PASSWORD = `pw-${randomBytes(18).toString('hex')}`;

let counter = 0;

export async function createAppDatabase(server: PostgresServer): Promise<string> {
  const name = `app_${process.pid}_${++counter}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE]);
    if (exists.rowCount === 0)
      await admin.query(
        `CREATE ROLE ${APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '${APP_PASSWORD}'`,
      );
    await admin.query(`CREATE DATABASE ${name} OWNER ${APP_ROLE}`);
  } finally {
    await admin.end();
  }
  return `postgres://${APP_ROLE}:${APP_PASSWORD}@127.0.0.1:${server.port}/${name}`;
}
