// Role sync for one community: read rules, wallets and past grants; ask the chain (multicall
// batches, outside any database transaction); apply the difference through REST; record each
// change after Discord accepted it. Running it twice in a row changes nothing the second time.
import { randomBytes } from 'node:crypto';
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

const UNKNOWN_GUILD = 10004;
const UNKNOWN_MEMBER = 10007;
const UNKNOWN_ROLE = 10011;
const MISSING_ACCESS = 50001;
const AUDIT_REASON = 'Shardwarden token gate';

export function requireServices(services: WorkerServices) {
  const { db, chain } = services;
  if (!db) throw new UserFacingError('Token gating is not set up on this bot (no database configured).');
  if (!chain) throw new UserFacingError('Token gating is not set up on this bot (no chain RPC configured).');
  return { db, chain };
}

/**
 * One sync per community at a time, across all workers: two overlapping syncs could read before
 * the other's changes and undo them (a stale revoke after a fresh wallet link).
 */
export async function syncCommunity(services: WorkerServices, data: RoleSyncData): Promise<RoleSyncSummary> {
  const lock = new CommunityLock(services, data.communityId);
  await lock.acquire();
  try {
    return await syncCommunityLocked(services, data);
  } finally {
    await lock.release();
  }
}

const LOCK_TTL_MS = 15 * 60_000;
const LOCK_WAIT_MS = 120_000;

class CommunityLock {
  private readonly key: string;
  private readonly token = randomBytes(12).toString('hex');

  constructor(
    private readonly services: WorkerServices,
    communityId: string,
  ) {
    this.key = services.key('token-gating', 'role-sync-lock', communityId);
  }

  async acquire(): Promise<void> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    while ((await this.services.redis.set(this.key, this.token, 'PX', LOCK_TTL_MS, 'NX')) !== 'OK') {
      // Throwing retries the task later (or tells the admin), instead of waiting without end.
      if (Date.now() > deadline)
        throw new UserFacingError(
          'Another role sync of this server is still running; try again in a minute.',
        );
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async release(): Promise<void> {
    // Only our own lock: if it expired and another sync took it, leave that one alone.
    await this.services.redis.eval(
      "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
      1,
      this.key,
      this.token,
    );
  }
}

async function syncCommunityLocked(services: WorkerServices, data: RoleSyncData): Promise<RoleSyncSummary> {
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
  const addresses = [...new Set(wallets.map((w) => w.address as `0x${string}`))];
  // A rule made for another chain than the RPC endpoints serve cannot be decided here: its
  // members keep their roles (a native balance on the wrong chain would be read "fine").
  const servedChain = rules.length && addresses.length ? await chain.chainId() : undefined;
  const onChain = rules.filter((r) => r.chainId === servedChain);
  const elsewhere = rules.filter((r) => r.chainId !== servedChain);
  if (elsewhere.length && servedChain !== undefined)
    log.warn({ rules: elsewhere.map((r) => r.id), servedChain }, 'rules for another chain left undecided');
  const evaluations = [
    ...(onChain.length ? await chain.evaluateRules(onChain.map(toRuleSpec), addresses) : []),
    ...(servedChain === undefined
      ? []
      : elsewhere.flatMap((r) =>
          addresses.map((wallet) => ({
            ruleId: r.id,
            wallet,
            eligible: false,
            error: `rule is for chain ${r.chainId}, the RPC endpoints serve chain ${servedChain}`,
          })),
        )),
  ];
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

  let guildGone = false;
  const apply = async (change: RoleChange, kind: 'grant' | 'revoke') => {
    if (guildGone) return;
    const route = Routes.guildMemberRole(communityId, change.userId, change.roleId);
    try {
      if (kind === 'grant') await services.rest.put(route, { reason: AUDIT_REASON });
      else await services.rest.delete(route, { reason: AUDIT_REASON });
    } catch (err) {
      const code = err instanceof DiscordAPIError ? err.code : undefined;
      if (code === UNKNOWN_GUILD || code === MISSING_ACCESS) {
        // The bot is no longer in this server: stop its periodic sync (GUILD_DELETE may be missed).
        guildGone = true;
        return;
      }
      // The member left or the role was deleted: forget the grant, there is nothing to remove.
      const gone = code === UNKNOWN_MEMBER || code === UNKNOWN_ROLE;
      if (!(gone && kind === 'revoke')) {
        summary.failed += 1;
        log.warn(
          { user: change.userId, role: change.roleId, change: kind, err: (err as Error).message },
          'role change refused by Discord',
        );
        return;
      }
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
  if (guildGone) {
    await services.tasks.cancel(roleSyncScheduleId(communityId));
    log.warn('the bot is no longer in this server; its periodic role sync is cancelled');
  }
  log.info({ ...summary }, 'role sync done');
  return summary;
}
