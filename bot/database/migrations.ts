// Pure logic of the offline migration runner: reading Prisma-layout migration folders,
// checksums exactly as Prisma's schema engine computes them, and deciding what to apply.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface MigrationFile {
  /** The folder name, e.g. 20261127000000_init (what _prisma_migrations.migration_name holds). */
  name: string;
  sql: string;
  checksum: string;
}

/** A row of Prisma's _prisma_migrations table. */
export interface AppliedMigration {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  started_at: Date;
  logs: string | null;
}

export class MigrationError extends Error {}

/** sha256 of the script, hex, two digits per byte (Prisma's render_checksum). */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

/**
 * Prisma's script_matches_checksum: accepts the script with either line ending (git may
 * convert them on checkout) and the unpadded hex some old Prisma versions wrote.
 */
export function checksumMatches(sql: string, recorded: string): boolean {
  const variants = [sql, sql.replaceAll('\r\n', '\n'), sql.replaceAll('\n', '\r\n')];
  return variants.some((script) => {
    const digest = createHash('sha256').update(script, 'utf8').digest();
    const rendered =
      recorded.length !== 0 && recorded.length !== 64
        ? [...digest].map((b) => b.toString(16)).join('')
        : digest.toString('hex');
    return rendered === recorded;
  });
}

/** Migration folders in name order (the timestamp prefix orders them), as Prisma reads them. */
export function readMigrations(dir: string): MigrationFile[] {
  if (!existsSync(dir)) throw new MigrationError(`migrations folder ${dir} does not exist`);
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory())
    .sort()
    .map((name) => {
      const file = join(dir, name, 'migration.sql');
      if (!existsSync(file)) throw new MigrationError(`migration ${name} has no migration.sql (${file})`);
      const sql = readFileSync(file, 'utf8');
      return { name, sql, checksum: migrationChecksum(sql) };
    });
}

export interface MigrationPlan {
  pending: MigrationFile[];
  /** Applied in the database but not in this build (a newer version migrated it): harmless. */
  unknown: string[];
}

/**
 * What to apply, or a MigrationError when the history forbids it: a migration that failed
 * earlier and was never resolved, or an applied migration whose file has changed since.
 */
export function planMigrations(files: MigrationFile[], applied: AppliedMigration[]): MigrationPlan {
  const failed = applied.filter((row) => row.finished_at === null && row.rolled_back_at === null);
  if (failed.length > 0) {
    const names = failed.map((row) => row.migration_name).join(', ');
    throw new MigrationError(
      `migration ${names} failed earlier and is not resolved; fix the database, then mark it with ` +
        `\`prisma migrate resolve --rolled-back <name>\` (to retry it) or \`--applied <name>\``,
    );
  }
  const finished = applied.filter((row) => row.finished_at !== null && row.rolled_back_at === null);
  const byName = new Map(files.map((f) => [f.name, f]));
  for (const row of finished) {
    const file = byName.get(row.migration_name);
    if (file && !checksumMatches(file.sql, row.checksum))
      throw new MigrationError(
        `migration ${row.migration_name} was modified after it was applied: the database recorded ` +
          `checksum ${row.checksum}, migration.sql now has ${file.checksum}; restore the file ` +
          `(put changes in a new migration)`,
      );
  }
  const done = new Set(finished.map((row) => row.migration_name));
  return {
    pending: files.filter((f) => !done.has(f.name)),
    unknown: [...done].filter((name) => !byName.has(name)).sort(),
  };
}
