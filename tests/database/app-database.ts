// A fresh database owned by an ordinary role (no SUPERUSER, no BYPASSRLS), as in production:
// superusers skip row-level security, so testing RLS as `postgres` would prove nothing.
import pg from 'pg';

export { APP_ROLE, APP_PASSWORD, createAppDatabase } from '../../testenv/index.js';

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
