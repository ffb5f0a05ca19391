// Which roles to grant and remove, from the rules, the members' wallets, what the chain says and
// what was granted before. Pure, so the sync is easy to reason about and safe to run twice:
// applying its output and running it again yields no changes.
import type { RuleEvaluation } from '../../chain/index.js';

export interface SyncRule {
  id: string;
  roleId: string;
  minAmount: bigint;
}

export interface RoleChange {
  userId: string;
  roleId: string;
  /** The rule that makes the member eligible (grants only). */
  ruleId?: string;
}

export interface RoleChanges {
  grant: RoleChange[];
  revoke: RoleChange[];
  /** Members whose eligibility for a role could not be decided (an RPC or contract error). */
  undecided: RoleChange[];
}

/**
 * A member qualifies for a rule when the balances of all their linked wallets together reach
 * its minimum; for a role when any rule of that role qualifies. A role is left alone when no
 * rule qualifies but one could not be evaluated: a failing RPC must not strip roles.
 * Only roles this bot granted are ever removed.
 */
export function computeRoleChanges(input: {
  rules: SyncRule[];
  wallets: { userId: string; address: string }[];
  evaluations: RuleEvaluation[];
  assignments: { userId: string; roleId: string }[];
  /** Restrict to these members (on-demand sync of one member); default all with wallets or roles. */
  userIds?: string[];
}): RoleChanges {
  const walletOwner = new Map(input.wallets.map((w) => [w.address.toLowerCase(), w.userId]));
  // (user, rule) → summed balance, or undefined once an evaluation failed.
  const totals = new Map<string, bigint | undefined>();
  const pair = (userId: string, ruleId: string) => `${userId}\u0000${ruleId}`;
  for (const e of input.evaluations) {
    const userId = walletOwner.get(e.wallet.toLowerCase());
    if (userId === undefined) continue;
    const k = pair(userId, e.ruleId);
    if (e.error !== undefined || e.balance === undefined) {
      totals.set(k, undefined);
      continue;
    }
    if (totals.has(k) && totals.get(k) === undefined) continue;
    totals.set(k, (totals.get(k) ?? 0n) + e.balance);
  }
  const users = new Set(
    input.userIds ?? [...input.wallets.map((w) => w.userId), ...input.assignments.map((a) => a.userId)],
  );
  const assigned = new Set(input.assignments.map((a) => `${a.userId}\u0000${a.roleId}`));
  const rulesByRole = new Map<string, SyncRule[]>();
  for (const r of input.rules) rulesByRole.set(r.roleId, [...(rulesByRole.get(r.roleId) ?? []), r]);
  const roles = new Set([...rulesByRole.keys(), ...input.assignments.map((a) => a.roleId)]);
  const changes: RoleChanges = { grant: [], revoke: [], undecided: [] };
  for (const userId of [...users].sort()) {
    for (const roleId of [...roles].sort()) {
      let qualifying: SyncRule | undefined;
      let unknown = false;
      for (const rule of rulesByRole.get(roleId) ?? []) {
        const k = pair(userId, rule.id);
        if (totals.has(k) && totals.get(k) === undefined) unknown = true;
        else if ((totals.get(k) ?? 0n) >= rule.minAmount) {
          qualifying = rule;
          break;
        }
      }
      const has = assigned.has(`${userId}\u0000${roleId}`);
      if (qualifying && !has) changes.grant.push({ userId, roleId, ruleId: qualifying.id });
      else if (!qualifying && unknown) changes.undecided.push({ userId, roleId });
      else if (!qualifying && has) changes.revoke.push({ userId, roleId });
    }
  }
  return changes;
}
