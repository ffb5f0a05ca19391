import pg from 'pg';
import { APP_ROLE, remoteClientsHba, startPostgres, type PostgresServer } from '../../testenv/index.js';

describe('Postgres from Debian', () => {
  let postgres: PostgresServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => {
    await postgres?.close();
  });

  test('a SQL round trip on the real server', async () => {
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      await client.query('create table smoke (id serial primary key, name text not null)');
      await client.query('insert into smoke (name) values ($1), ($2)', ['ear', 'brain']);
      const { rows } = await client.query<{ name: string }>('select name from smoke order by id');
      expect(rows.map((r) => r.name)).toEqual(['ear', 'brain']);
      const version = await client.query<{ server_version_num: string }>('show server_version_num');
      expect(Number(version.rows[0]!.server_version_num)).toBeGreaterThanOrEqual(130000);
    } finally {
      await client.end();
    }
  });

  test('a Postgres bin folder without a server fails loudly', async () => {
    process.env.SHARDWARDEN_POSTGRES_BIN = '/nonexistent/bin';
    try {
      await expect(startPostgres()).rejects.toThrow(
        'SHARDWARDEN_POSTGRES_BIN points at /nonexistent/bin/postgres, which is not an executable file',
      );
    } finally {
      delete process.env.SHARDWARDEN_POSTGRES_BIN;
    }
  });

  test('clients beyond loopback: only the app role, only from the given subnet, only with its password', () => {
    expect(remoteClientsHba('10.244.7.0/24')).toBe(`host all ${APP_ROLE} 10.244.7.0/24 scram-sha-256\n`);
    expect(remoteClientsHba('10.244.7.0/24')).not.toMatch(/trust|samenet|postgres|all all/);
    expect(() => remoteClientsHba('samenet')).toThrow('clients: expected an IPv4 CIDR, got samenet');
  });
});
