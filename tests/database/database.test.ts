// The Prisma client against a freshly migrated database: every model and column round-trips
// (so schema.prisma and the hand-written SQL agree), row-level security isolates communities,
// CHECK constraints hold, and failures are counted without leaking the URL.
import { Registry } from 'prom-client';
import { createDatabase, GateRuleKind, Prisma, type Database } from '../../bot/database/index.js';
import { migrate } from '../../bot/database/migrate.js';
import { startPostgres, type PostgresServer } from '../../testenv/index.js';
import { APP_PASSWORD, APP_ROLE, createAppDatabase, query } from './app-database.js';

const A = '100000000000000001';
const B = '200000000000000002';
const addr = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;

let server: PostgresServer;
let url: string;
let db: Database;
let registry: Registry;

beforeAll(async () => {
  server = await startPostgres();
  url = await createAppDatabase(server);
  await migrate(url);
  registry = new Registry();
  db = createDatabase({ url, registry, poolMax: 2 });
});
afterAll(async () => {
  await db?.close();
  await server?.close();
});

const errorsCounted = async (operation: string) => {
  const metric = (await registry.getMetricsAsJSON()).find(
    (m) => m.name === 'shardwarden_database_errors_total',
  );
  return (metric?.values ?? []).find((v) => v.labels.operation === operation)?.value ?? 0;
};

const camelToSnake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The app database as the superuser, which reads around RLS (to see exactly what was written). */
const superuserUrl = () => server.url.replace(/\/postgres$/, new URL(url).pathname);

/** The row as Postgres stores it, keyed by column, to compare against what Prisma returned. */
async function rawRow(table: string, where: string, params: unknown[]): Promise<Record<string, unknown>> {
  const rows = await query<{ row: Record<string, unknown> }>(
    superuserUrl(),
    `SELECT to_jsonb(t) AS row FROM ${table} t WHERE ${where}`,
    params,
  );
  expect(rows).toHaveLength(1);
  return rows[0]!.row;
}

/** Every scalar field of the model is set and equals the column of the same (snake_case) name. */
async function expectRoundTrip(
  fields: Record<string, string>,
  table: string,
  written: Record<string, unknown>,
  read: Record<string, unknown>,
  where: string,
  params: unknown[],
) {
  const fieldNames = Object.values(fields).sort();
  expect(Object.keys(read).sort()).toEqual(fieldNames);
  for (const f of fieldNames) expect(read[f]).not.toBeNull();
  for (const [k, v] of Object.entries(written)) expect(read[k]).toEqual(v);
  const raw = await rawRow(table, where, params);
  expect(Object.keys(raw).sort()).toEqual(fieldNames.map(camelToSnake).sort());
  for (const f of fieldNames) {
    const value = read[f];
    const stored = raw[camelToSnake(f)];
    if (value instanceof Date) expect(new Date(stored as string).getTime()).toBe(value.getTime());
    else expect(stored).toEqual(value);
  }
}

describe('schema and migration agree', () => {
  it('round-trips every model and every column', async () => {
    const at = (s: number) => new Date(Date.UTC(2026, 0, 2, 3, 4, s, 567));
    const community = await db.prisma.community.create({ data: { id: A, createdAt: at(1) } });
    await expectRoundTrip(
      Prisma.CommunityScalarFieldEnum,
      'communities',
      { id: A, createdAt: at(1) },
      community,
      'id = $1',
      [A],
    );
    await db.prisma.community.create({ data: { id: B } });

    type Check = Parameters<typeof expectRoundTrip>;
    const checks: Check[] = [];
    let ruleId = '';
    await db.withCommunity(A, async (tx) => {
      const member = { communityId: A, userId: 'u1', createdAt: at(2) };
      checks.push([
        Prisma.MemberScalarFieldEnum,
        'members',
        member,
        await tx.member.create({ data: member }),
        'community_id = $1 AND user_id = $2',
        [A, 'u1'],
      ]);

      const wallet = { communityId: A, userId: 'u1', address: addr(0xa1), verifiedAt: at(3) };
      const w = await tx.wallet.create({ data: wallet });
      expect(w.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      checks.push([Prisma.WalletScalarFieldEnum, 'wallets', wallet, w, 'id = $1', [w.id]]);

      const rule = {
        communityId: A,
        kind: GateRuleKind.ERC1155_BALANCE,
        chainId: 8453,
        contractAddress: addr(0xc1),
        tokenId: '42',
        minAmount: (2n ** 256n - 1n).toString(),
        roleId: 'r1',
        createdBy: 'admin1',
        createdAt: at(4),
      };
      const r = await tx.gateRule.create({ data: rule });
      ruleId = r.id;
      checks.push([Prisma.GateRuleScalarFieldEnum, 'gate_rules', rule, r, 'id = $1', [r.id]]);

      const assignment = { communityId: A, userId: 'u1', roleId: 'r1', ruleId: r.id, grantedAt: at(5) };
      checks.push([
        Prisma.RoleAssignmentScalarFieldEnum,
        'role_assignments',
        assignment,
        await tx.roleAssignment.create({ data: assignment }),
        'community_id = $1 AND user_id = $2 AND role_id = $3',
        [A, 'u1', 'r1'],
      ]);

      const nonce = {
        nonce: 'n-1',
        communityId: A,
        userId: 'u1',
        message: 'Sign to verify\nnonce: n-1',
        expiresAt: at(6),
        usedAt: at(7),
        createdAt: at(8),
      };
      checks.push([
        Prisma.VerificationNonceScalarFieldEnum,
        'verification_nonces',
        nonce,
        await tx.verificationNonce.create({ data: nonce }),
        'nonce = $1',
        ['n-1'],
      ]);
    });
    // Compared with what another connection reads once the transaction has committed.
    expect(checks.map((c) => c[1]).sort()).toEqual([
      'gate_rules',
      'members',
      'role_assignments',
      'verification_nonces',
      'wallets',
    ]);
    for (const check of checks) await expectRoundTrip(...check);

    // Deleting the rule keeps the role assignment and forgets which rule granted it.
    await db.withCommunity(A, async (tx) => {
      await tx.gateRule.delete({ where: { id: ruleId } });
      expect((await tx.roleAssignment.findFirstOrThrow({ where: { userId: 'u1' } })).ruleId).toBeNull();
    });
  });
});

describe('row-level security', () => {
  beforeAll(async () => {
    for (const c of [A, B])
      await db.withCommunity(c, async (tx) => {
        await tx.member.create({ data: { communityId: c, userId: `rls-${c}` } });
        await tx.wallet.create({
          data: { communityId: c, userId: `rls-${c}`, address: addr(Number(c.slice(0, 1)) * 0x1000) },
        });
        await tx.gateRule.create({
          data: {
            communityId: c,
            kind: 'NATIVE_BALANCE',
            chainId: 1,
            minAmount: '1',
            roleId: 'rls',
            createdBy: 'x',
          },
        });
        await tx.verificationNonce.create({
          data: {
            nonce: `rls-${c}`,
            communityId: c,
            userId: `rls-${c}`,
            message: 'm',
            expiresAt: new Date(),
          },
        });
      });
  });

  it('connects as a role that does not skip RLS', async () => {
    const [role] = await query<{ rolsuper: boolean; rolbypassrls: boolean }>(
      url,
      'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user',
    );
    expect(new URL(url).username).toBe(APP_ROLE);
    expect(role).toEqual({ rolsuper: false, rolbypassrls: false });
  });

  it("never returns another community's rows in a community's transaction", async () => {
    await db.withCommunity(A, async (tx) => {
      for (const rows of [
        await tx.member.findMany(),
        await tx.wallet.findMany(),
        await tx.gateRule.findMany(),
        await tx.verificationNonce.findMany(),
        await tx.$queryRaw<{ community_id: string }[]>`SELECT community_id FROM members`,
        await tx.$queryRaw<
          { community_id: string }[]
        >`SELECT community_id FROM wallets WHERE community_id = ${B}`,
      ]) {
        for (const row of rows)
          expect(
            (row as { communityId?: string; community_id?: string }).communityId ??
              (row as { community_id: string }).community_id,
          ).toBe(A);
      }
      expect(await tx.wallet.count({ where: { communityId: B } })).toBe(0);
      expect(await tx.member.count()).toBe(await tx.member.count({ where: { communityId: A } }));
      expect(await tx.member.count()).toBeGreaterThan(0);
      expect(
        await tx.wallet.findUnique({
          where: { communityId_address: { communityId: B, address: addr(0x2000) } },
        }),
      ).toBeNull();
      // Updates and deletes cannot reach B's rows either.
      expect(
        (await tx.gateRule.updateMany({ where: { communityId: B }, data: { roleId: 'hijacked' } })).count,
      ).toBe(0);
      const own = await tx.verificationNonce.count();
      expect(await tx.$executeRaw`DELETE FROM verification_nonces`).toBe(own);
    });
    await db.withCommunity(B, async (tx) => {
      expect(await tx.verificationNonce.count()).toBe(1);
      expect((await tx.gateRule.findFirstOrThrow()).roleId).toBe('rls');
    });
  });

  it("rejects writing a row with another community's id", async () => {
    await expect(
      db.withCommunity(A, (tx) => tx.member.create({ data: { communityId: B, userId: 'intruder' } })),
    ).rejects.toThrow(/row-level security/);
    await expect(
      db.withCommunity(
        A,
        (tx) => tx.$executeRaw`INSERT INTO members (community_id, user_id) VALUES (${B}, 'raw-intruder')`,
      ),
    ).rejects.toThrow(/row-level security/);
    // Moving an own row to B is a write with B's id too.
    await expect(
      db.withCommunity(A, (tx) =>
        tx.member.update({
          where: { communityId_userId: { communityId: A, userId: `rls-${A}` } },
          data: { communityId: B },
        }),
      ),
    ).rejects.toThrow(/row-level security/);
    await db.withCommunity(B, async (tx) => {
      expect(
        await tx.member.count({ where: { userId: { in: ['intruder', 'raw-intruder', `rls-${A}`] } } }),
      ).toBe(0);
    });
  });

  it('shows no tenant rows without a community, and the setting does not outlive its transaction', async () => {
    // Both pooled connections have run tenant transactions by now; none keeps the tenant.
    for (let i = 0; i < 4; i++) {
      expect(await db.prisma.member.findMany()).toEqual([]);
      expect(await db.prisma.wallet.count()).toBe(0);
      expect(await db.prisma.$queryRaw`SELECT * FROM gate_rules`).toEqual([]);
      await expect(
        db.prisma.member.create({ data: { communityId: A, userId: 'no-tenant' } }),
      ).rejects.toThrow(/row-level security/);
    }
    expect((await db.prisma.community.findMany()).map((c) => c.id).sort()).toEqual([A, B]);
  });

  it('refuses an empty community id', async () => {
    await expect(db.withCommunity('', async () => 1)).rejects.toThrow(
      /communityId must be a non-empty string/,
    );
  });
});

describe('CHECK constraints', () => {
  const rule = {
    communityId: A,
    kind: GateRuleKind.ERC20_BALANCE,
    chainId: 1,
    contractAddress: addr(0xe2),
    minAmount: '5',
    roleId: 'chk',
    createdBy: 'x',
  };
  const reject = (fn: Parameters<Database['withCommunity']>[1], constraint: string) =>
    expect(db.withCommunity(A, fn)).rejects.toThrow(new RegExp(constraint));

  it('rejects a wallet address that is not lowercase 0x + 40 hex', async () => {
    for (const address of [
      addr(0xab).toUpperCase().replace('0X', '0x'),
      '0x1234',
      `${addr(1)}0`,
      addr(1).slice(2),
    ])
      await reject(
        (tx) => tx.wallet.create({ data: { communityId: A, userId: 'u1', address } }),
        'wallets_address_check',
      );
  });

  it('rejects a minAmount that is not a uint256 decimal', async () => {
    for (const minAmount of ['abc', '-1', '1.5', '', '1e18', '9'.repeat(79)])
      await reject(
        (tx) => tx.gateRule.create({ data: { ...rule, minAmount } }),
        'gate_rules_min_amount_check',
      );
  });

  it('enforces the shape of each kind of rule and refuses duplicates', async () => {
    await reject(
      (tx) => tx.gateRule.create({ data: { ...rule, kind: 'NATIVE_BALANCE' } }),
      'gate_rules_contract_address_check',
    );
    await reject(
      (tx) => tx.gateRule.create({ data: { ...rule, contractAddress: null } }),
      'gate_rules_contract_address_check',
    );
    await reject(
      (tx) => tx.gateRule.create({ data: { ...rule, tokenId: '1' } }),
      'gate_rules_token_id_check',
    );
    await reject(
      (tx) => tx.gateRule.create({ data: { ...rule, kind: 'ERC1155_BALANCE' } }),
      'gate_rules_token_id_check',
    );
    await reject(
      (tx) => tx.gateRule.create({ data: { ...rule, kind: 'ERC1155_BALANCE', tokenId: '0x1' } }),
      'gate_rules_token_id_check',
    );
    const native = { ...rule, kind: GateRuleKind.NATIVE_BALANCE, contractAddress: null, roleId: 'dup' };
    await db.withCommunity(A, (tx) => tx.gateRule.create({ data: native }));
    // Null contract and token ids count as equal (NULLS NOT DISTINCT).
    await reject((tx) => tx.gateRule.create({ data: native }), 'Unique constraint failed');
  });
});

describe('errors', () => {
  it('counts failed queries by model.action, and failed transactions once', async () => {
    const before = await errorsCounted('Member.create');
    await expect(db.prisma.member.create({ data: { communityId: A, userId: 'x' } })).rejects.toThrow();
    expect(await errorsCounted('Member.create')).toBe(before + 1);

    const raw = await errorsCounted('$queryRaw');
    const tx = await errorsCounted('transaction');
    await expect(db.withCommunity(A, (t) => t.$queryRaw`SELECT * FROM no_such_table`)).rejects.toThrow(
      /no_such_table/,
    );
    expect(await errorsCounted('$queryRaw')).toBe(raw + 1);
    expect(await errorsCounted('transaction')).toBe(tx);

    // The connection dies between the last query and COMMIT: the transaction itself fails.
    await expect(
      db.withCommunity(A, async (t) => {
        const [{ pid }] = await t.$queryRaw<[{ pid: number }]>`SELECT pg_backend_pid() AS pid`;
        await query(superuserUrl(), 'SELECT pg_terminate_backend($1)', [pid]);
        return pid;
      }),
    ).rejects.toThrow();
    expect(await errorsCounted('transaction')).toBe(tx + 1);
    // The pool replaces the dead connection.
    expect(await db.prisma.community.count()).toBe(2);
  });

  it("does not count errors of the caller's own code", async () => {
    const tx = await errorsCounted('transaction');
    await expect(
      db.withCommunity(A, async () => Promise.reject(new Error('domain says no'))),
    ).rejects.toThrow('domain says no');
    expect(await errorsCounted('transaction')).toBe(tx);
  });

  it('never shows the database URL or password when the database is unreachable', async () => {
    const closed = createDatabase({ url: url.replace(`:${server.port}/`, ':1/'), registry: new Registry() });
    try {
      const err = (await closed.prisma.community.findMany().catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(Error);
      const text = `${err.message}\n${err.stack}\n${JSON.stringify(err)}`;
      expect(text).not.toContain(APP_PASSWORD);
      expect(text).not.toContain(url.replace(`:${server.port}/`, ':1/'));
    } finally {
      await closed.close();
    }
  });

  it('validates its options', () => {
    expect(() => createDatabase({ url: 'mysql://x' })).toThrow(
      'database url must be a postgres:// or postgresql:// URL',
    );
    expect(() => createDatabase({ url, poolMax: 0 })).toThrow('poolMax=0 must be an integer >= 1');
  });
});
