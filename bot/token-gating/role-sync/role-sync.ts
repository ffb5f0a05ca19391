// Role sync for one community: read rules, wallets and past grants; ask the chain (multicall
// batches, outside any database transaction); apply the difference through REST; record each
// change after Discord accepted it. Running it twice in a row changes nothing the second time.
import { DiscordAPIError } from '@discordjs/rest';
import { Routes } from 'discord.js';
import { UserFacingError, type WorkerServices } from '../../worker/handlers/bot-module.js';
import { toRuleSpec } from '../rules/gate-rule.js';
import { computeRoleChanges, type RoleChange } from './role-changes.js';

export const ROLE_SYNC_TASK = 'token-gating.role-sync';
export const roleSyncScheduleId = (communityId: string) => `token-gating.role-sync:${communityId}`;

export interface RoleSyncData {
  communityId: string;
  /** Only these members (after a wallet link); default everyone. */
  userIds?: string[];
}

export interface RoleSyncSummary {
  granted: number;
  revoked: number;
  undecided: number;
  failed: number;
}

const UNKNOWN_MEMBER = 10007;
const AUDIT_REASON = 'Shardwarden token gate';

export function requireServices(services: WorkerServices) {
  const { db, chain } = services;
  if (!db) throw new UserFacingError('Token gating is not set up on this bot (no database configured).');
  if (!chain) throw new UserFacingError('Token gating is not set up on this bot (no chain RPC configured).');
  return { db, chain };
}

export async function syncCommunity(services: WorkerServices, data: RoleSyncData): Promise<RoleSyncSummary> {
  const { db, chain } = requireServices(services);
  const { communityId } = data;
  const log = services.logger.child({ community: communityId });
  const { rules, wallets, assignments } = await db.withCommunity(communityId, async (tx) => ({
    rules: await tx.gateRule.findMany(),
    wallets: await tx.wallet.findMany({
      where: data.userIds ? { userId: { in: data.userIds } } : {},
      select: { userId: true, address: true },
    }),
    assignments: await tx.roleAssignment.findMany({
      where: data.userIds ? { userId: { in: data.userIds } } : {},
      select: { userId: true, roleId: true },
    }),
  }));
  const summary: RoleSyncSummary = { granted: 0, revoked: 0, undecided: 0, failed: 0 };
  if (rules.length === 0 && assignments.length === 0) return summary;
  const evaluations =
    rules.length && wallets.length
      ? await chain.evaluateRules(rules.map(toRuleSpec), [
          ...new Set(wallets.map((w) => w.address as `0x${string}`)),
        ])
      : [];
  const changes = computeRoleChanges({
    rules: rules.map((r) => ({ id: r.id, roleId: r.roleId, minAmount: BigInt(r.minAmount) })),
    wallets,
    evaluations,
    assignments,
    ...(data.userIds ? { userIds: data.userIds } : {}),
  });
  summary.undecided = changes.undecided.length;
  if (changes.undecided.length)
    log.warn(
      { undecided: changes.undecided.length },
      'some eligibility could not be evaluated; roles left as they are',
    );

  const apply = async (change: RoleChange, kind: 'grant' | 'revoke') => {
    const route = Routes.guildMemberRole(communityId, change.userId, change.roleId);
    try {
      if (kind === 'grant') await services.rest.put(route, { reason: AUDIT_REASON });
      else await services.rest.delete(route, { reason: AUDIT_REASON });
    } catch (err) {
      const memberGone = err instanceof DiscordAPIError && err.code === UNKNOWN_MEMBER;
      if (!(memberGone && kind === 'revoke')) {
        summary.failed += 1;
        log.warn(
          { user: change.userId, role: change.roleId, change: kind, err: (err as Error).message },
          'role change refused by Discord',
        );
        return;
      }
      // The member left: forget the grant, there is nothing to remove.
    }
    await db.withCommunity(communityId, async (tx) => {
      if (kind === 'grant') {
        await tx.member.upsert({
          where: { communityId_userId: { communityId, userId: change.userId } },
          create: { communityId, userId: change.userId },
          update: {},
        });
        await tx.roleAssignment.upsert({
          where: { communityId_userId_roleId: { communityId, userId: change.userId, roleId: change.roleId } },
          create: {
            communityId,
            userId: change.userId,
            roleId: change.roleId,
            ruleId: change.ruleId ?? null,
          },
          update: { ruleId: change.ruleId ?? null },
        });
      } else {
        await tx.roleAssignment.deleteMany({ where: { userId: change.userId, roleId: change.roleId } });
      }
    });
    if (kind === 'grant') summary.granted += 1;
    else summary.revoked += 1;
  };
  // A few at a time: the shared REST limiter paces them; order does not matter.
  const queue = [
    ...changes.grant.map((c) => () => apply(c, 'grant')),
    ...changes.revoke.map((c) => () => apply(c, 'revoke')),
  ];
  await Promise.all(
    Array.from({ length: Math.min(5, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await next();
    }),
  );
  log.info({ ...summary }, 'role sync done');
  return summary;
}
