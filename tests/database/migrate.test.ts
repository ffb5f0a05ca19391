// The offline runner against a real Postgres 15, as an ordinary (non-superuser) role.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { defaultMigrationsDir, migrate, runMigrateCommand } from '../../bot/database/migrate.js';
import { makeTempDir, startPostgres, type PostgresServer } from '../../testenv/index.js';
import { APP_PASSWORD, createAppDatabase, query } from './app-database.js';

const INIT = '20261127000000_init';
let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
});

const history = (url: string) =>
  query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
    url,
    'SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY started_at',
  );

describe('migrate', () => {
  it('applies every migration to an empty database, recorded as prisma migrate deploy does; a second run applies nothing', async () => {
    const url = await createAppDatabase(server);
    expect(await migrate(url)).toEqual({ applied: [INIT] });
    const rows = await history(url);
    const sql = readFileSync(join(defaultMigrationsDir(), INIT, 'migration.sql'));
    expect(rows).toEqual([
      {
        migration_name: INIT,
        checksum: createHash('sha256').update(sql).digest('hex'),
        finished_at: expect.any(Date),
        applied_steps_count: 1,
      },
    ]);
    const tables = await query<{ tablename: string }>(
      url,
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    );
    expect(tables.map((t) => t.tablename)).toEqual([
      '_prisma_migrations',
      'communities',
      'gate_rules',
      'members',
      'role_assignments',
      'verification_nonces',
      'wallets',
    ]);
    expect(await migrate(url)).toEqual({ applied: [] });
    expect(await history(url)).toHaveLength(1);
  });

  it('is safe when two workers start at once: one applies, the other waits and finds nothing to do', async () => {
    const url = await createAppDatabase(server);
    const results = await Promise.all([migrate(url), migrate(url), migrate(url)]);
    expect(results.map((r) => r.applied).sort()).toEqual([[], [], [INIT]]);
    expect(await history(url)).toHaveLength(1);
  });

  it('refuses a database whose recorded checksum differs from the file', async () => {
    const url = await createAppDatabase(server);
    await migrate(url);
    await query(url, 'UPDATE "_prisma_migrations" SET checksum = $1', ['0'.repeat(64)]);
    await expect(migrate(url)).rejects.toThrow(
      new RegExp(`migration ${INIT} was modified after it was applied: the database recorded checksum 0{64}`),
    );
  });

  it('refuses to go on after a migration that failed earlier (e.g. under prisma migrate deploy)', async () => {
    const url = await createAppDatabase(server);
    await migrate(url);
    await query(url, 'UPDATE "_prisma_migrations" SET finished_at = NULL, logs = $1', ['boom']);
    await expect(migrate(url)).rejects.toThrow(/failed earlier and is not resolved/);
  });

  it('rolls a failing migration back entirely and names it; nothing is recorded', async () => {
    const url = await createAppDatabase(server);
    const tmp = makeTempDir('migrations');
    try {
      cpSync(defaultMigrationsDir(), tmp.path, { recursive: true });
      const broken = join(tmp.path, '20990101000000_broken');
      mkdirSync(broken);
      writeFileSync(
        join(broken, 'migration.sql'),
        'CREATE TABLE "half_written" (id INT);\nALTER TABLE "no_such_table" ADD COLUMN x INT;\n',
      );
      await expect(migrate(url, undefined, { migrationsDir: tmp.path })).rejects.toThrow(
        /migration 20990101000000_broken failed and was rolled back .*"no_such_table" does not exist/,
      );
      // The good migration before it stays applied; the broken one left no table and no row.
      expect((await history(url)).map((r) => r.migration_name)).toEqual([INIT]);
      expect(await query(url, "SELECT 1 FROM pg_tables WHERE tablename = 'half_written'")).toHaveLength(0);
    } finally {
      tmp.remove();
    }
  });

  it('never shows the database password in its errors', async () => {
    const url = `postgres://someone:${APP_PASSWORD}@127.0.0.1:${server.port}/no_such_database`;
    const err = await migrate(url).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(`${(err as Error).message}\n${(err as Error).stack}`).not.toContain(APP_PASSWORD);
  });
});

describe('runMigrateCommand', () => {
  it('needs DATABASE_URL, and says so', async () => {
    await expect(runMigrateCommand({})).rejects.toThrow('DATABASE_URL is required but not set');
  });

  it('rejects a URL that is not postgres without echoing it', async () => {
    const err = await runMigrateCommand({ DATABASE_URL: `mysql://u:${APP_PASSWORD}@h/db` }).catch(
      (e: Error) => e,
    );
    expect((err as Error).message).toBe('DATABASE_URL must be a postgres:// or postgresql:// URL');
  });

  it('migrates the database named by DATABASE_URL', async () => {
    const url = await createAppDatabase(server);
    await runMigrateCommand({ DATABASE_URL: url, SHARDWARDEN_LOG_LEVEL: 'silent' });
    expect((await history(url)).map((r) => r.migration_name)).toEqual([INIT]);
  });
});
