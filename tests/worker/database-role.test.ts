// A worker whose database role skips row-level security (superuser or BYPASSRLS) must not start:
// communities would silently see each other's rows. The app role (NOSUPERUSER NOBYPASSRLS) starts.
import { join } from 'node:path';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import {
  makeTempDir,
  startPostgres,
  startRedis,
  waitUntil,
  type PostgresServer,
  type RedisServer,
} from '../../testenv/index.js';
import { APP_ROLE, createAppDatabase, query } from '../database/app-database.js';
import { startShardwarden } from '../support/built-entrypoint.js';
import { startWorker, workerEnv } from './harness.js';

describe('the worker refuses a database role that bypasses row-level security', () => {
  let sim: DiscordSimulator;
  let redis: RedisServer;
  let postgres: PostgresServer;
  const logs = makeTempDir('database-role');

  beforeAll(async () => {
    sim = await DiscordSimulator.start({ seed: 13, guilds: 1 });
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  });

  afterAll(async () => {
    await sim?.stop();
    await Promise.all([redis?.close(), postgres?.close()]);
  });

  /** Starts a worker that is expected to exit; resolves with its exit code and log. */
  async function refusedStart(name: string, databaseUrl: string) {
    const proc = startShardwarden(
      name,
      ['worker'],
      await workerEnv(sim, redis.url, { DATABASE_URL: databaseUrl }),
      join(logs.path, `${name}.log`),
    );
    await waitUntil(`${name} to exit`, async () => proc.exited(), { timeoutMs: 90_000 });
    return { code: proc.child.exitCode, log: proc.tail(50) };
  }

  test('a superuser URL is refused with the role and the fix; nothing is migrated', async () => {
    const { code, log } = await refusedStart('superuser', postgres.url);
    expect(code).toBe(2);
    expect(log).toContain('database role "postgres" is a superuser');
    expect(log).toContain('ALTER ROLE "postgres" NOSUPERUSER NOBYPASSRLS');
    const tables = await query(postgres.url, "SELECT 1 FROM pg_tables WHERE tablename = 'gate_rules'");
    expect(tables).toHaveLength(0);
  });

  test('a BYPASSRLS role is refused; the app role starts', async () => {
    const appUrl = await createAppDatabase(postgres);
    const bypassUrl = new URL(appUrl);
    bypassUrl.username = 'shardwarden_bypass';
    // A member of the app role: it could do all the app role does, and sees every community.
    await query(
      postgres.url,
      `CREATE ROLE shardwarden_bypass LOGIN NOSUPERUSER BYPASSRLS IN ROLE ${APP_ROLE}`,
    );
    const { code, log } = await refusedStart('bypassrls', bypassUrl.toString());
    expect(code).toBe(2);
    expect(log).toContain('database role "shardwarden_bypass" has BYPASSRLS');
    expect(log).not.toContain('pw-Sup3rSecret');

    const worker = await startWorker(await workerEnv(sim, redis.url, { DATABASE_URL: appUrl }));
    try {
      expect(await worker.ready()).toBe(true);
    } finally {
      await worker.proc.stop();
    }
  });
});
