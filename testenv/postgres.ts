import { execFileSync } from 'node:child_process';
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
 * A throwaway Postgres cluster (initdb in a temp folder, trust auth, fsync off). With `host`, it
 * also listens there and trusts clients on the subnets the machine is attached to (`samenet`:
 * a real node's pods on its bridge); `url` stays the loopback one.
 */
export async function startPostgres(options: { host?: string } = {}): Promise<PostgresServer> {
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
  if (options.host) appendFileSync(join(data, 'pg_hba.conf'), 'host all all samenet trust\n');
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
      `listen_addresses=${['127.0.0.1', ...(options.host ? [options.host] : [])].join(',')}`,
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
/** Trust auth ignores it; it is in the URL so tests can check errors never show it. */
export const APP_PASSWORD = 'pw-Sup3rSecret-xyz';

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
