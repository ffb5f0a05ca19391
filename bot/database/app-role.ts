// The workers' database role must be subject to row-level security: a superuser or a role with
// BYPASSRLS skips every policy (even FORCE), so one community would silently see another's rows.
import type { Database } from './database.js';

export class UnsafeDatabaseRoleError extends Error {}

interface RoleRow {
  rolname: string;
  rolsuper: boolean;
  rolbypassrls: boolean;
}

/** Why RLS would not apply to this role, or undefined when it does. */
export function unsafeRoleReason(role: RoleRow): string | undefined {
  const why = [role.rolsuper && 'is a superuser', role.rolbypassrls && 'has BYPASSRLS'].filter(Boolean);
  if (why.length === 0) return undefined;
  return (
    `database role "${role.rolname}" ${why.join(' and ')}, so row-level security would be off and ` +
    `communities would see each other's rows. Use the app role (see docs/database.md, "Roles") ` +
    `or run: ALTER ROLE "${role.rolname}" NOSUPERUSER NOBYPASSRLS;`
  );
}

/** Throws UnsafeDatabaseRoleError naming the role and the fix when RLS would not apply. */
export async function assertRowLevelSecurityApplies(db: Database): Promise<void> {
  const rows = await db.prisma.$queryRaw<RoleRow[]>`
    SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`;
  const reason = rows[0] && unsafeRoleReason(rows[0]);
  if (reason) throw new UnsafeDatabaseRoleError(reason);
}
