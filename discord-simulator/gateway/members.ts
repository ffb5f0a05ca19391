// Request Guild Members (gateway op 8) answered as Discord documents it: GUILD_MEMBERS_CHUNK
// dispatches of up to 1,000 members each, by `query` (a prefix of the username or nickname,
// at most 100 results) or by `user_ids` (at most 100, unknown ones in `not_found`); the whole
// member list (`query: ""`) only with the GuildMembers intent.
import type { Guild, Member, World } from '../world.js';
import { Intent } from './intents.js';

export interface RequestGuildMembers {
  guild_id?: unknown;
  query?: unknown;
  limit?: unknown;
  presences?: unknown;
  user_ids?: unknown;
  nonce?: unknown;
}

export const CHUNK_SIZE = 1_000;
/** Discord returns at most this many members for a `query` prefix or a `user_ids` list. */
export const QUERY_LIMIT = 100;
const NONCE_MAX_BYTES = 32;

export type MemberRequestPlan =
  | { kind: 'chunks'; chunks: Record<string, unknown>[] }
  /** Neither `query` nor `user_ids`: not a valid request. */
  | { kind: 'invalid'; reason: string }
  /** The whole member list without the GuildMembers intent. */
  | { kind: 'disallowed' };

export function planMemberChunks(
  world: World,
  guild: Guild,
  request: RequestGuildMembers,
  intents: number,
): MemberRequestPlan {
  const ids = request.user_ids;
  let members: Member[];
  let notFound: string[] | undefined;
  if (ids !== undefined && ids !== null) {
    const list = (Array.isArray(ids) ? ids : [ids]).map(String).slice(0, QUERY_LIMIT);
    const found = list.map((id) => [id, world.member(guild, id)] as const);
    members = found.flatMap(([, m]) => m ?? []);
    notFound = found.filter(([, m]) => !m).map(([id]) => id);
  } else if (typeof request.query === 'string') {
    const limit = Number(request.limit ?? 0);
    if (!Number.isInteger(limit) || limit < 0)
      return { kind: 'invalid', reason: 'limit must be an integer >= 0' };
    if (request.query === '') {
      if ((intents & Intent.GuildMembers) === 0) return { kind: 'disallowed' };
      members = world.members(guild, limit === 0 ? Infinity : limit);
    } else {
      members = matching(world, guild, request.query, Math.min(limit || QUERY_LIMIT, QUERY_LIMIT));
    }
  } else {
    return { kind: 'invalid', reason: 'query or user_ids is required' };
  }

  const nonce =
    typeof request.nonce === 'string' && Buffer.byteLength(request.nonce) <= NONCE_MAX_BYTES
      ? request.nonce
      : undefined;
  // Presences need the GuildPresences intent (else Discord treats the flag as false); nobody is
  // online in the simulator, so there are none to send.
  const presences = request.presences === true && (intents & Intent.GuildPresences) !== 0;
  const count = Math.max(1, Math.ceil(members.length / CHUNK_SIZE));
  const chunks = Array.from({ length: count }, (_, index) => ({
    guild_id: guild.id,
    members: members.slice(index * CHUNK_SIZE, (index + 1) * CHUNK_SIZE),
    chunk_index: index,
    chunk_count: count,
    ...(notFound && { not_found: notFound }),
    ...(presences && { presences: [] }),
    ...(nonce !== undefined && { nonce }),
  }));
  return { kind: 'chunks', chunks };
}

/** Members whose username or nickname starts with `query`, case-insensitively. */
function matching(world: World, guild: Guild, query: string, limit: number) {
  const prefix = query.toLowerCase();
  return world
    .members(guild, Infinity)
    .filter(
      (m) =>
        m.user.username.toLowerCase().startsWith(prefix) ||
        (m.nick !== null && m.nick.toLowerCase().startsWith(prefix)),
    )
    .slice(0, limit);
}
