// The token-gating slash commands: /verify, /gate add|list|remove, /roles sync, /status.
import { ApplicationCommandOptionType, PermissionFlagsBits } from 'discord.js';
import { RuleTargetError } from '../../chain/index.js';
import {
  UserFacingError,
  type CommandHandler,
  type WorkerServices,
} from '../../worker/handlers/bot-module.js';
import { describeRule, parseGateRule, RULE_KINDS, toRuleSpec } from '../rules/gate-rule.js';
import { requireServices, ROLE_SYNC_TASK, syncCommunity } from '../role-sync/role-sync.js';
import { scheduleRoleSync } from '../role-sync/schedule.js';
import { verificationPath } from '../verification/verification-routes.js';
import { createVerification } from '../verification/wallet-verification.js';
import { gateRoleRefusal, readGateAuthority } from './role-authority.js';

const adminPermissions = String(PermissionFlagsBits.ManageRoles);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const verifyCommand: CommandHandler = {
  definition: {
    name: 'verify',
    description: 'Link a wallet to your Discord account (sign a one-time message)',
    dm_permission: false,
  },
  ephemeral: true,
  cooldownSeconds: 10,
  async execute(interaction, services) {
    const communityId = interaction.requireGuild();
    const { db } = requireServices(services);
    const { nonce, expiresAt } = await createVerification(db, {
      botName: services.botName,
      communityId,
      userId: interaction.userId,
    });
    const url = `${services.publicUrl}${verificationPath(communityId, nonce)}`;
    return `Open ${url} and sign the message with the wallet you want to link. The link works once and expires <t:${Math.floor(expiresAt.getTime() / 1000)}:R>.`;
  },
};

export const gateCommand: CommandHandler = {
  definition: {
    name: 'gate',
    description: 'Token-gated roles of this server',
    default_member_permissions: adminPermissions,
    dm_permission: false,
    options: [
      {
        type: ApplicationCommandOptionType.Subcommand,
        name: 'add',
        description: 'Grant a role to members whose wallets hold enough of a token',
        options: [
          {
            type: ApplicationCommandOptionType.String,
            name: 'type',
            description: 'What is checked',
            required: true,
            choices: RULE_KINDS.map((k) => ({ name: k.label, value: k.choice })),
          },
          {
            type: ApplicationCommandOptionType.Role,
            name: 'role',
            description: 'Role to grant',
            required: true,
          },
          {
            type: ApplicationCommandOptionType.String,
            name: 'min',
            description: 'Minimum, in base units (wei); ERC-721 default 1',
          },
          {
            type: ApplicationCommandOptionType.String,
            name: 'contract',
            description: 'Token contract address',
          },
          { type: ApplicationCommandOptionType.String, name: 'token-id', description: 'ERC-1155 token id' },
        ],
      },
      { type: ApplicationCommandOptionType.Subcommand, name: 'list', description: 'List the rules' },
      {
        type: ApplicationCommandOptionType.Subcommand,
        name: 'remove',
        description: 'Remove a rule (members lose the role at the next sync)',
        options: [
          {
            type: ApplicationCommandOptionType.String,
            name: 'id',
            description: 'Rule id from /gate list',
            required: true,
          },
        ],
      },
    ],
  },
  adminOnly: true,
  ephemeral: true,
  // `add` reads the chain to check the contract; list and remove are fast but share the path.
  defer: true,
  async execute(interaction, services) {
    const communityId = interaction.requireGuild();
    const { db, chain } = requireServices(services);
    switch (interaction.subcommand) {
      case 'add': {
        const draft = parseGateRule({
          kind: interaction.getString('type', true),
          roleId: interaction.getId('role', true),
          ...optional('minAmount', interaction.getString('min')),
          ...optional('contract', interaction.getString('contract')),
          ...optional('tokenId', interaction.getString('token-id')),
        });
        const refusal = gateRoleRefusal(
          draft.roleId,
          await readGateAuthority(services.rest, communityId, {
            userId: interaction.userId,
            roleIds: interaction.raw.member?.roles ?? [],
          }),
        );
        if (refusal) throw new UserFacingError(`Rule not added: ${refusal}`);
        const spec = toRuleSpec({
          id: 'new',
          kind: draft.kind,
          contractAddress: draft.contractAddress ?? null,
          tokenId: draft.tokenId?.toString() ?? null,
          minAmount: draft.minAmount.toString(),
        });
        try {
          await chain.checkRuleTarget(spec);
        } catch (err) {
          if (err instanceof RuleTargetError) throw new UserFacingError(`Rule not added: ${err.message}`);
          throw err;
        }
        const chainId = await chain.chainId();
        await db.prisma.community.upsert({
          where: { id: communityId },
          create: { id: communityId },
          update: {},
        });
        let rule;
        try {
          rule = await db.withCommunity(communityId, (tx) =>
            tx.gateRule.create({
              data: {
                communityId,
                kind: draft.kind,
                chainId,
                contractAddress: draft.contractAddress ?? null,
                tokenId: draft.tokenId?.toString() ?? null,
                minAmount: draft.minAmount.toString(),
                roleId: draft.roleId,
                createdBy: interaction.userId,
              },
            }),
          );
        } catch (err) {
          if ((err as { code?: string }).code === 'P2002')
            throw new UserFacingError('An identical rule already exists (see `/gate list`).');
          throw err;
        }
        await scheduleRoleSync(services, communityId);
        return `Rule \`${rule.id}\` added: ${describeRule(draft)}. Members are checked at the next sync (or run \`/roles sync\`).`;
      }
      case 'list': {
        const rules = await db.withCommunity(communityId, (tx) =>
          tx.gateRule.findMany({ orderBy: { createdAt: 'asc' } }),
        );
        if (rules.length === 0) return 'No rules yet. Add one with `/gate add`.';
        return rules.map((r) => `\`${r.id}\` ${describeRule(r)}`).join('\n');
      }
      case 'remove': {
        const id = interaction.getString('id', true).trim();
        if (!UUID.test(id)) throw new UserFacingError(`\`${id}\` is not a rule id (see \`/gate list\`).`);
        const { count } = await db.withCommunity(communityId, (tx) =>
          tx.gateRule.deleteMany({ where: { id } }),
        );
        if (count === 0) throw new UserFacingError(`No rule \`${id}\` in this server.`);
        await services.tasks.enqueue(ROLE_SYNC_TASK, { communityId });
        return `Rule \`${id}\` removed. Members who had its role only through it lose it at the sync that just started.`;
      }
      default:
        throw new UserFacingError('Use `/gate add`, `/gate list` or `/gate remove`.');
    }
  },
};

export const rolesCommand: CommandHandler = {
  definition: {
    name: 'roles',
    description: 'Token-gated role sync',
    default_member_permissions: adminPermissions,
    dm_permission: false,
    options: [
      {
        type: ApplicationCommandOptionType.Subcommand,
        name: 'sync',
        description: 'Check every linked wallet now and fix roles',
      },
    ],
  },
  adminOnly: true,
  ephemeral: true,
  defer: true,
  cooldownSeconds: 30,
  async execute(interaction, services) {
    const communityId = interaction.requireGuild();
    if (interaction.subcommand !== 'sync') throw new UserFacingError('Use `/roles sync`.');
    const s = await syncCommunity(services, { communityId });
    return `Role sync done: ${s.granted} granted, ${s.revoked} removed${s.undecided ? `, ${s.undecided} left unchanged (chain not readable)` : ''}${s.failed ? `, ${s.failed} refused by Discord (check the bot's role position and permissions)` : ''}.`;
  },
};

export const statusCommand: CommandHandler = {
  definition: {
    name: 'status',
    description: 'Your linked wallets, what they qualify for and your gated roles',
    dm_permission: false,
  },
  ephemeral: true,
  defer: true,
  cooldownSeconds: 5,
  async execute(interaction, services) {
    const communityId = interaction.requireGuild();
    return memberStatus(services, communityId, interaction.userId);
  },
};

async function memberStatus(services: WorkerServices, communityId: string, userId: string): Promise<string> {
  const { db, chain } = requireServices(services);
  const { wallets, rules, roles } = await db.withCommunity(communityId, async (tx) => ({
    wallets: await tx.wallet.findMany({ where: { userId }, orderBy: { verifiedAt: 'asc' } }),
    rules: await tx.gateRule.findMany({ orderBy: { createdAt: 'asc' } }),
    roles: await tx.roleAssignment.findMany({ where: { userId } }),
  }));
  if (wallets.length === 0) return 'No wallet linked yet. Run `/verify` to link one.';
  const evaluations = rules.length
    ? await chain.evaluateRules(
        rules.map(toRuleSpec),
        wallets.map((w) => w.address as `0x${string}`),
      )
    : [];
  const lines = [`Wallets: ${wallets.map((w) => `\`${w.address}\``).join(', ')}`];
  for (const r of rules) {
    const mine = evaluations.filter((e) => e.ruleId === r.id);
    const failed = mine.some((e) => e.error !== undefined);
    const total = mine.reduce((sum, e) => sum + (e.balance ?? 0n), 0n);
    const ok = !failed && total >= BigInt(r.minAmount);
    lines.push(
      `${failed ? '❔' : ok ? '✅' : '❌'} ${describeRule(r)} (you hold ${failed ? 'unknown' : total.toString()})`,
    );
  }
  lines.push(
    `Gated roles you have: ${roles.length ? roles.map((a) => `<@&${a.roleId}>`).join(', ') : 'none'}`,
  );
  return lines.join('\n');
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}
