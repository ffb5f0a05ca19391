// Checksums and planning, pure: they must agree with Prisma's schema engine byte for byte.
import {
  checksumMatches,
  migrationChecksum,
  planMigrations,
  type AppliedMigration,
  type MigrationFile,
} from '../../bot/database/migrations.js';

const file = (name: string, sql: string): MigrationFile => ({ name, sql, checksum: migrationChecksum(sql) });
const row = (m: MigrationFile, over: Partial<AppliedMigration> = {}): AppliedMigration => ({
  migration_name: m.name,
  checksum: m.checksum,
  finished_at: new Date(),
  rolled_back_at: null,
  started_at: new Date(),
  logs: null,
  ...over,
});

describe('migration checksums', () => {
  it('is sha256 hex, zero-padded, as Prisma renders it', () => {
    // The value asserted by Prisma's own checksum tests.
    expect(migrationChecksum('hello')).toBe(
      '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
    );
  });

  it('matches a script whatever its line endings, like Prisma', () => {
    const lf = 'CREATE TABLE a ();\nCREATE TABLE b ();\n';
    const crlf = lf.replaceAll('\n', '\r\n');
    expect(checksumMatches(crlf, migrationChecksum(lf))).toBe(true);
    expect(checksumMatches(lf, migrationChecksum(crlf))).toBe(true);
    expect(checksumMatches('abc\n', migrationChecksum('abc'))).toBe(false);
  });

  it('accepts the unpadded checksums old Prisma versions wrote', () => {
    // Find a script whose digest has a byte below 0x10, so padding matters.
    let i = 0;
    while (
      !migrationChecksum(`SELECT ${i};`)
        .match(/../g)!
        .some((b) => b.startsWith('0'))
    )
      i++;
    const sql = `SELECT ${i};`;
    const unpadded = migrationChecksum(sql)
      .match(/../g)!
      .map((b) => b.replace(/^0/, ''))
      .join('');
    expect(unpadded.length).toBeLessThan(64);
    expect(checksumMatches(sql, unpadded)).toBe(true);
    expect(checksumMatches(`${sql} `, unpadded)).toBe(false);
  });
});

describe('planMigrations', () => {
  const a = file('20260101000000_a', 'SELECT 1;');
  const b = file('20260102000000_b', 'SELECT 2;');

  it('applies what the database has not finished, in order', () => {
    expect(planMigrations([a, b], []).pending.map((m) => m.name)).toEqual([a.name, b.name]);
    expect(planMigrations([a, b], [row(a)]).pending.map((m) => m.name)).toEqual([b.name]);
    // Rolled back (prisma migrate resolve --rolled-back) means: apply it again.
    expect(planMigrations([a], [row(a, { rolled_back_at: new Date() })]).pending).toHaveLength(1);
  });

  it('refuses an applied migration whose file changed', () => {
    expect(() => planMigrations([a, b], [row(a, { checksum: migrationChecksum('SELECT 0;') })])).toThrow(
      /migration 20260101000000_a was modified after it was applied/,
    );
  });

  it('refuses to go on after an unresolved failed migration', () => {
    expect(() => planMigrations([a, b], [row(a, { finished_at: null })])).toThrow(
      /20260101000000_a failed earlier .*prisma migrate resolve/,
    );
  });

  it('reports migrations only a newer version knows, without failing', () => {
    expect(planMigrations([a], [row(a), row(b)])).toEqual({ pending: [], unknown: [b.name] });
  });
});
