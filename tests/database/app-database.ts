// A fresh database owned by an ordinary role (no SUPERUSER, no BYPASSRLS), as in production:
// superusers skip row-level security, so testing RLS as `postgres` would prove nothing.
import pg from 'pg';
import type { PostgresServer } from '../../testenv/index.js';

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

/** A one-off query on its own connection (history rows, catalog checks). */
export async function query<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}
