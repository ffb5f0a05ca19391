// Token-gated roles end to end: the simulator sends the interactions through a real gateway
// process to a real worker process, which uses Postgres (as an ordinary role, so RLS applies),
// anvil with the test tokens, and the simulator's REST.
import { privateKeyToAccount } from 'viem/accounts';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { createDatabase, type Database } from '../../bot/database/index.js';
import {
  deployTestTokens,
  startAnvil,
  startPostgres,
  startRedis,
  tokenActions,
  waitUntil,
  type AnvilNode,
  type PostgresServer,
  type RedisServer,
  type TestTokens,
  type TokenActions,
} from '../../testenv/index.js';
import { createAppDatabase } from '../database/app-database.js';
import type { GatewayProcess } from '../gateway/harness.js';
import { slashCommand, startOneShardGateway, startWorker, workerEnv, type WorkerProcess } from './harness.js';

describe('token-gated roles, end to end', () => {
  let sim: DiscordSimulator;
  let redis: RedisServer;
  let postgres: PostgresServer;
  let anvil: AnvilNode;
  let tokens: TestTokens;
  let chain: TokenActions;
  let gateway: GatewayProcess;
  let worker: WorkerProcess;
  let db: Database;
  let guildId: string;
  let roles: { erc20: string; erc721: string; erc1155: string };
  let member: string;
  let admin: string;
  let botRole: string;
  const ADMIN = '8';

  beforeAll(async () => {
    sim = await DiscordSimulator.start({ seed: 11, guilds: 2, guildSize: { members: 5 } });
    [redis, postgres, anvil] = await Promise.all([startRedis(), startPostgres(), startAnvil()]);
    tokens = await deployTestTokens(anvil);
    chain = tokenActions(anvil, tokens);
    const databaseUrl = await createAppDatabase(postgres);
    const guild = [...sim.world.guilds.values()][0]!;
    guildId = guild.id;
    member = String(BigInt(guildId) + 1n);
    admin = String(BigInt(guildId) + 2n);
    roles = {
      erc20: sim.world.addRole(guild, 'Token holder').id,
      erc721: sim.world.addRole(guild, 'NFT holder').id,
      erc1155: sim.world.addRole(guild, 'Badge holder').id,
    };
    // As on Discord, the admin may gate roles below their highest role, and the bot may grant
    // roles below its own highest role: both roles are above the gated ones.
    const admins = sim.world.addRole(guild, 'Admins', { permissions: ADMIN });
    botRole = sim.world.addRole(guild, 'Shardwarden').id;
    sim.changeMemberRole(guild, admin, admins.id, 'add');
    sim.changeMemberRole(guild, sim.world.botUser.id, botRole, 'add');
    gateway = await startOneShardGateway(sim, redis.url);
    worker = await startWorker(
      await workerEnv(sim, redis.url, {
        DATABASE_URL: databaseUrl,
        CHAIN_RPC_URLS: anvil.url,
        CHAIN_MULTICALL_ADDRESS: tokens.multicall3,
      }),
    );
    db = createDatabase({ url: databaseUrl });
  });

  afterAll(async () => {
    await db?.close();
    await worker?.proc.stop();
    await gateway?.proc.stop();
    await sim?.stop();
    await Promise.all([redis?.close(), postgres?.close(), anvil?.stop()]);
  });

  /** Sends a slash command and resolves with the text the user finally sees. */
  async function run(userId: string, command: string, options: unknown[] = [], permissions = '0') {
    const { firstResponseMs, text } = await slashCommand(sim, {
      guildId,
      userId,
      command,
      options,
      permissions,
    });
    expect(firstResponseMs).toBeLessThan(3000);
    return text;
  }

  const sub = (name: string, options: { name: string; value: string }[]) => [
    { type: 1, name, options: options.map((o) => ({ ...o, type: 3 })) },
  ];
  const rules = () =>
    db.withCommunity(guildId, (tx) => tx.gateRule.findMany({ orderBy: { createdAt: 'asc' } }));
  const memberRoles = () => sim.world.member(sim.world.guild(guildId)!, member)!.roles;

  test('admins add rules of each kind; bad rules get a clear reply and write nothing', async () => {
    const added = await run(
      admin,
      'gate',
      sub('add', [
        { name: 'type', value: 'erc20' },
        { name: 'role', value: roles.erc20 },
        { name: 'min', value: '100' },
        { name: 'contract', value: tokens.erc20 },
      ]),
      ADMIN,
    );
    expect(added).toMatch(/^Rule `[0-9a-f-]{36}` added: ERC-20 balance ≥ 100 at 0x/);
    expect(
      await run(
        admin,
        'gate',
        sub('add', [
          { name: 'type', value: 'erc721' },
          { name: 'role', value: roles.erc721 },
          { name: 'contract', value: tokens.erc721 },
        ]),
        ADMIN,
      ),
    ).toContain('ERC-721 ownership');
    expect(
      await run(
        admin,
        'gate',
        sub('add', [
          { name: 'type', value: 'erc1155' },
          { name: 'role', value: roles.erc1155 },
          { name: 'contract', value: tokens.erc1155 },
          { name: 'token-id', value: '7' },
          { name: 'min', value: '2' },
        ]),
        ADMIN,
      ),
    ).toContain('ERC-1155 balance');

    const refusals: [string, { name: string; value: string }[], string, string][] = [
      [
        'a member',
        [
          { name: 'type', value: 'erc20' },
          { name: 'role', value: roles.erc20 },
          { name: 'min', value: '1' },
          { name: 'contract', value: tokens.erc20 },
        ],
        '0',
        'is for admins',
      ],
      [
        'a malformed address',
        [
          { name: 'type', value: 'erc20' },
          { name: 'role', value: roles.erc20 },
          { name: 'min', value: '1' },
          { name: 'contract', value: '0x12345' },
        ],
        ADMIN,
        '0x12345',
      ],
      [
        'a reverting contract',
        [
          { name: 'type', value: 'erc20' },
          { name: 'role', value: roles.erc20 },
          { name: 'min', value: '1' },
          { name: 'contract', value: tokens.reverter },
        ],
        ADMIN,
        'Rule not added',
      ],
      [
        'a non-contract address',
        [
          { name: 'type', value: 'erc20' },
          { name: 'role', value: roles.erc20 },
          { name: 'min', value: '1' },
          { name: 'contract', value: anvil.accounts[5]!.address },
        ],
        ADMIN,
        'no contract code',
      ],
      [
        'a duplicate',
        [
          { name: 'type', value: 'erc20' },
          { name: 'role', value: roles.erc20 },
          { name: 'min', value: '100' },
          { name: 'contract', value: tokens.erc20 },
        ],
        ADMIN,
        'identical rule already exists',
      ],
    ];
    for (const [what, options, perms, message] of refusals) {
      const reply = await run(what === 'a member' ? member : admin, 'gate', sub('add', options), perms);
      expect({ what, reply }).toEqual({ what, reply: expect.stringContaining(message) });
    }
    expect((await rules()).map((r) => r.kind)).toEqual([
      'ERC20_BALANCE',
      'ERC721_OWNERSHIP',
      'ERC1155_BALANCE',
    ]);
    const listed = await run(admin, 'gate', sub('list', []), ADMIN);
    expect(listed.split('\n')).toHaveLength(3);
  });

  test('a member links a wallet with a real signature; the link cannot be replayed; roles follow the chain', async () => {
    const wallet = privateKeyToAccount(anvil.accounts[1]!.privateKey);
    await chain.mintErc20(wallet.address, 150n);
    await chain.mintErc721(wallet.address, 1n);
    await chain.mintErc1155(wallet.address, 7n, 2n);

    const reply = await run(member, 'verify');
    const url = /(http:\/\/\S+\/verify\/\d+\/[0-9a-f]{32})/.exec(reply)?.[1];
    expect(url).toBeDefined();
    const { message } = (await (await fetch(url!, { headers: { accept: 'application/json' } })).json()) as {
      message: string;
    };
    expect(message).toContain(member);

    const post = (body: unknown) =>
      fetch(url!, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const other = privateKeyToAccount(anvil.accounts[2]!.privateKey);
    const malformed = await post({
      address: 'not-an-address',
      signature: await wallet.signMessage({ message }),
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: string }).error).toContain('not-an-address');
    const wrongSigner = await post({
      address: wallet.address,
      signature: await other.signMessage({ message }),
    });
    expect(wrongSigner.status).toBe(400);
    expect(((await wrongSigner.json()) as { error: string }).error).toContain('not made by');

    const linked = await post({ address: wallet.address, signature: await wallet.signMessage({ message }) });
    expect(linked.status).toBe(200);
    const replay = await post({ address: wallet.address, signature: await wallet.signMessage({ message }) });
    expect(replay.status).toBe(409);

    // The link queues a sync for the member: all three roles are granted through REST, then
    // recorded (each row is written after Discord accepted the change, so wait for the rows).
    const granted = [roles.erc20, roles.erc721, roles.erc1155].sort();
    const assignedRoles = async () =>
      (await db.withCommunity(guildId, (tx) => tx.roleAssignment.findMany({ where: { userId: member } })))
        .map((a) => a.roleId)
        .sort();
    await waitUntil(
      'roles granted and recorded',
      async () =>
        granted.every((r) => memberRoles().includes(r)) &&
        JSON.stringify(await assignedRoles()) === JSON.stringify(granted),
      { timeoutMs: 60_000 },
    );
    expect(await assignedRoles()).toEqual(granted);

    // A second sync finds nothing to change.
    expect(await run(admin, 'roles', [{ type: 1, name: 'sync' }], ADMIN)).toBe(
      'Role sync done: 0 granted, 0 removed.',
    );
    const status = await run(member, 'status');
    expect(status).toContain(wallet.address.toLowerCase());
    expect(status.match(/✅/g)).toHaveLength(3);

    // The balance falls below the rule: the next sync removes that role only.
    await chain.transferErc20(anvil.accounts[1]!.privateKey, other.address, 100n);
    // Another admin: /roles sync has a per-member cooldown.
    const secondAdmin = String(BigInt(guildId) + 4n);
    expect(await run(secondAdmin, 'roles', [{ type: 1, name: 'sync' }], ADMIN)).toBe(
      'Role sync done: 0 granted, 1 removed.',
    );
    expect(memberRoles()).not.toContain(roles.erc20);
    expect(memberRoles()).toEqual(expect.arrayContaining([roles.erc721, roles.erc1155]));
    expect(await assignedRoles()).toEqual([roles.erc721, roles.erc1155].sort());
  });

  test('a rule made for another chain is left undecided: nobody loses its role', async () => {
    const guild = sim.world.guild(guildId)!;
    const otherChainRole = sim.world.addRole(guild, 'Other chain').id;
    await db.withCommunity(guildId, async (tx) => {
      await tx.gateRule.create({
        data: {
          communityId: guildId,
          kind: 'NATIVE_BALANCE',
          chainId: 999,
          minAmount: '1',
          roleId: otherChainRole,
          createdBy: admin,
        },
      });
      await tx.roleAssignment.create({
        data: { communityId: guildId, userId: member, roleId: otherChainRole },
      });
    });
    sim.changeMemberRole(guild, member, otherChainRole, 'add');
    const thirdAdmin = String(BigInt(guildId) + 5n);
    expect(await run(thirdAdmin, 'roles', [{ type: 1, name: 'sync' }], ADMIN)).toBe(
      'Role sync done: 0 granted, 0 removed, 1 left unchanged (chain not readable).',
    );
    expect(memberRoles()).toContain(otherChainRole);
  });

  test('an expired link is refused and links nothing', async () => {
    const reply = await run(String(BigInt(guildId) + 3n), 'verify');
    const url = /(http:\/\/\S+\/verify\/\d+\/([0-9a-f]{32}))/.exec(reply)!;
    await db.withCommunity(guildId, (tx) =>
      tx.verificationNonce.update({
        where: { nonce: url[2]! },
        data: { expiresAt: new Date(Date.now() - 1000) },
      }),
    );
    const wallet = privateKeyToAccount(anvil.accounts[3]!.privateKey);
    const res = await fetch(url[1]!, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        address: wallet.address,
        signature: await wallet.signMessage({ message: 'anything' }),
      }),
    });
    expect(res.status).toBe(410);
    expect(
      await db.withCommunity(guildId, (tx) =>
        tx.wallet.count({ where: { address: wallet.address.toLowerCase() } }),
      ),
    ).toBe(0);
  });

  test("a role can be gated only below the caller's and the bot's highest roles, never with Administrator", async () => {
    const guild = sim.world.guild(guildId)!;
    const MANAGE_ROLES = String(1n << 28n);
    const moderator = String(BigInt(guildId) + 3n);
    // Bottom to top: Everything (Administrator), Helper, Moderator, Senior, the bot's role, VIP.
    const everything = sim.world.addRole(guild, 'Everything', { permissions: ADMIN });
    const helper = sim.world.addRole(guild, 'Helper');
    const moderatorRole = sim.world.addRole(guild, 'Moderator', { permissions: MANAGE_ROLES });
    const senior = sim.world.addRole(guild, 'Senior');
    const vip = sim.world.addRole(guild, 'VIP');
    sim.world.moveRole(guild, botRole, senior.position + 1);
    sim.world.moveRole(guild, vip.id, senior.position + 2);
    sim.changeMemberRole(guild, moderator, moderatorRole.id, 'add');

    const gate = (caller: string, roleId: string, permissions: string) =>
      run(
        caller,
        'gate',
        sub('add', [
          { name: 'type', value: 'erc20' },
          { name: 'role', value: roleId },
          { name: 'min', value: '7' },
          { name: 'contract', value: tokens.erc20 },
        ]),
        permissions,
      );
    const cases: [string, string, string, string][] = [
      ['a role above the moderator', moderator, senior.id, 'at or above your highest role (**Moderator**)'],
      ["the moderator's own role", moderator, moderatorRole.id, 'at or above your highest role'],
      ['an Administrator role below the moderator', moderator, everything.id, 'Administrator'],
      [
        "a role above the bot's, by the owner",
        member,
        vip.id,
        "at or above the bot's highest role (**Shardwarden**)",
      ],
      ['@everyone', moderator, guildId, "everyone's role"],
    ];
    for (const [what, caller, roleId, message] of cases) {
      const reply = await gate(caller, roleId, caller === member ? ADMIN : MANAGE_ROLES);
      expect({ what, reply }).toEqual({ what, reply: expect.stringContaining(message) });
      expect({ what, reply }).toEqual({ what, reply: expect.stringMatching(/^Rule not added: /) });
    }
    // Below both: allowed; the owner is not bound by their own roles, only by the bot's.
    expect(await gate(moderator, helper.id, MANAGE_ROLES)).toMatch(/^Rule `[0-9a-f-]{36}` added/);
    expect(await gate(member, senior.id, ADMIN)).toMatch(/^Rule `[0-9a-f-]{36}` added/);
    const gated = new Set((await rules()).map((r) => r.roleId));
    for (const refused of [moderatorRole.id, everything.id, vip.id, guildId])
      expect(gated.has(refused)).toBe(false);
    expect(gated.has(helper.id)).toBe(true);
    expect(gated.has(senior.id)).toBe(true);
  });
});
