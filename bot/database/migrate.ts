// `shardwarden migrate`: applies the SQL migrations in bot/database/migrations the way
// `prisma migrate deploy` does, without Prisma's native schema engine (which it would have to
// download). Same _prisma_migrations table and checksums, same advisory lock, so either tool
// can run after the other. Unlike Prisma, each migration runs in one transaction with its
// history row: a failure leaves nothing half-applied and nothing to resolve.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from 'pino';
import { EnvReader } from '../configuration/env-reader.js';
import { createLogger } from '../observability/logger.js';
import { MigrationError, planMigrations, readMigrations, type AppliedMigration } from './migrations.js';
import { redactError } from './redact.js';

/** Prisma Migrate's lock key: holding it also keeps `prisma migrate deploy` out, and vice versa. */
const PRISMA_MIGRATE_LOCK = 72707369;
/** How long a second runner waits for the first (which may be applying a long migration). */
const LOCK_TIMEOUT = '10min';

// Prisma's own DDL for the history table (schema engine, postgres flavour), so a database
// migrated here is one `prisma migrate deploy|status|resolve` recognise.
const CREATE_HISTORY_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrateOptions {
  /** Defaults to the migrations folder shipped with this build. */
  migrationsDir?: string;
}

/**
 * The migrations folder: next to this module when running from source, or the source tree's
 * when running compiled from dist/ (the image copies bot/database/migrations).
 */
export function defaultMigrationsDir(): string {
  const candidates = [
    fileURLToPath(new URL('./migrations/', import.meta.url)),
    fileURLToPath(new URL('../../../bot/database/migrations/', import.meta.url)),
  ];
  return candidates.find((dir) => existsSync(dir)) ?? candidates[0]!;
}

/**
 * Applies pending migrations in order. Needs a direct (session) connection, not a PgBouncer
 * transaction-mode one: the advisory lock is held by the session.
 */
export async function migrate(
  databaseUrl: string,
  logger?: Logger,
  options: MigrateOptions = {},
): Promise<{ applied: string[] }> {
  const files = readMigrations(options.migrationsDir ?? defaultMigrationsDir());
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'shardwarden-migrate' });
  // A dropped connection emits 'error' on the client; without a listener it would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(`SET lock_timeout = '${LOCK_TIMEOUT}'`);
    try {
      await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
    } catch (err) {
      throw new MigrationError(
        `could not take the migration lock within ${LOCK_TIMEOUT} (another migrate is running?): ${(err as Error).message}`,
      );
    }
    await client.query('RESET lock_timeout');
    try {
      return { applied: await applyPending(client, files, logger) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_LOCK]).catch(() => undefined);
    }
  } catch (err) {
    throw redactError(err, databaseUrl);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function applyPending(
  client: pg.Client,
  files: ReturnType<typeof readMigrations>,
  logger: Logger | undefined,
): Promise<string[]> {
  await client.query(CREATE_HISTORY_TABLE);
  const { rows } = await client.query<AppliedMigration>(
    'SELECT migration_name, checksum, finished_at, rolled_back_at, started_at, logs FROM "_prisma_migrations" ORDER BY started_at',
  );
  const plan = planMigrations(files, rows);
  if (plan.unknown.length > 0)
    logger?.warn(
      { migrations: plan.unknown },
      'the database has migrations this version does not know (a newer version applied them)',
    );
  const applied: string[] = [];
  for (const migration of plan.pending) {
    const started = Date.now();
    await client.query('BEGIN');
    try {
      await client.query(
        'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, clock_timestamp(), 0)',
        [randomUUID(), migration.checksum, migration.name],
      );
      // Simple query protocol: the script may hold many statements.
      await client.query(migration.sql);
      await client.query(
        'UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE migration_name = $1 AND finished_at IS NULL',
        [migration.name],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      const pgErr = err as Error & { position?: string };
      throw new MigrationError(
        `migration ${migration.name} failed and was rolled back (nothing of it is applied): ${pgErr.message}` +
          (pgErr.position ? ` (at character ${pgErr.position} of migration.sql)` : ''),
      );
    }
    applied.push(migration.name);
    logger?.info({ migration: migration.name, ms: Date.now() - started }, 'migration applied');
  }
  logger?.info({ applied: applied.length, total: files.length }, 'database schema is up to date');
  return applied;
}

/** `shardwarden migrate`: DATABASE_URL from the environment; the URL is never printed. */
export async function runMigrateCommand(env: NodeJS.ProcessEnv): Promise<void> {
  const reader = new EnvReader(env);
  const databaseUrl = reader.required('DATABASE_URL');
  if (!/^postgres(ql)?:\/\/./.test(databaseUrl))
    throw new MigrationError('DATABASE_URL must be a postgres:// or postgresql:// URL');
  const logger = createLogger('migrate', reader.logLevel());
  await migrate(databaseUrl, logger);
}
