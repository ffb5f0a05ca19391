// Who may gate a role: Discord's own role hierarchy. Gating a role lets anyone with a wallet
// obtain it, so a moderator with Manage Roles must not gate a role they could not grant by hand:
// one at or above their highest role (unless they own the server), one at or above the bot's
// highest role (Discord would refuse the grant anyway), or one that carries Administrator.
import {
  PermissionFlagsBits,
  Routes,
  type APIGuild,
  type APIGuildMember,
  type APIRole,
  type APIUser,
} from 'discord.js';
import type { REST } from '@discordjs/rest';

type RoleRank = Pick<APIRole, 'id' | 'name' | 'position'>;

/** Discord's order: higher position first; on a tie the lower id ranks higher. */
export function compareRoles(a: RoleRank, b: RoleRank): number {
  if (a.position !== b.position) return a.position - b.position;
  return BigInt(a.id) < BigInt(b.id) ? 1 : BigInt(a.id) > BigInt(b.id) ? -1 : 0;
}

/** The highest of `roleIds` (or @everyone, whose id is the guild's). */
export function highestRole(roles: RoleRank[], roleIds: readonly string[], guildId: string): RoleRank {
  const everyone = roles.find((r) => r.id === guildId) ?? { id: guildId, name: '@everyone', position: 0 };
  return roles
    .filter((r) => roleIds.includes(r.id))
    .reduce((top, r) => (compareRoles(r, top) > 0 ? r : top), everyone);
}

export interface GateAuthority {
  guildId: string;
  roles: Pick<APIRole, 'id' | 'name' | 'position' | 'permissions' | 'managed'>[];
  callerRoleIds: readonly string[];
  callerIsOwner: boolean;
  botRoleIds: readonly string[];
}

/** Why this caller may not gate `roleId`, or undefined when they may. */
export function gateRoleRefusal(roleId: string, a: GateAuthority): string | undefined {
  const role = a.roles.find((r) => r.id === roleId);
  if (!role) return `<@&${roleId}> is not a role of this server.`;
  const name = `**${role.name}**`;
  if (role.id === a.guildId) return `${name} is everyone's role; it cannot be gated.`;
  if (role.managed) return `${name} is managed by an integration; Discord does not let bots grant it.`;
  if ((BigInt(role.permissions) & PermissionFlagsBits.Administrator) !== 0n)
    return `${name} has the Administrator permission; gating it would let any wallet holder administer the server.`;
  const caller = highestRole(a.roles, a.callerRoleIds, a.guildId);
  if (!a.callerIsOwner && compareRoles(role, caller) >= 0)
    return `${name} is at or above your highest role (**${caller.name}**); you can only gate roles below it.`;
  const bot = highestRole(a.roles, a.botRoleIds, a.guildId);
  if (compareRoles(role, bot) >= 0)
    return `${name} is at or above the bot's highest role (**${bot.name}**), so Discord would refuse to grant it; move the bot's role above it first.`;
  return undefined;
}

/** The hierarchy facts of one guild for one caller, read through REST. */
export async function readGateAuthority(
  rest: REST,
  guildId: string,
  caller: { userId: string; roleIds: readonly string[] },
): Promise<GateAuthority> {
  const [roles, guild, me] = await Promise.all([
    rest.get(Routes.guildRoles(guildId)) as Promise<APIRole[]>,
    rest.get(Routes.guild(guildId)) as Promise<APIGuild>,
    rest.get(Routes.user('@me')) as Promise<APIUser>,
  ]);
  const bot = (await rest.get(Routes.guildMember(guildId, me.id))) as APIGuildMember;
  return {
    guildId,
    roles,
    callerRoleIds: caller.roleIds,
    callerIsOwner: guild.owner_id === caller.userId,
    botRoleIds: bot.roles,
  };
}
