// The simulated Discord world of one bot: its guilds, their members, roles and channels.
// Members, roles and channels of a guild are derived from the guild id on demand (offsets
// below 2^22 cannot collide with another guild's id), so 10,000 large guilds cost little memory;
// only what changes (role assignments, added members and roles) is stored.
import { SnowflakeGenerator, shardOfGuild } from './snowflake.js';

export interface GuildSize {
  members: number;
  channels: number;
  roles: number;
}

export interface Guild {
  id: string;
  name: string;
  ownerId: string;
  size: GuildSize;
  /** Guild feature flags (`ROLE_ICONS`, `COMMUNITY`, ...); none by default. */
  features: string[];
  extraRoles: Role[];
  extraMembers: Map<string, User>;
  /** userId → role ids, once changed through REST or the control API. */
  memberRoles: Map<string, string[]>;
  /** roleId → position, for roles moved since they were made (Modify Guild Role Positions). */
  rolePositions: Map<string, number>;
}

/** A user object as Discord sends it (API v10 UserResponse). */
export interface User {
  id: string;
  username: string;
  global_name: string | null;
  discriminator: string;
  avatar: string | null;
  bot?: boolean;
  /** Badges others can see (HypeSquad house, early supporter, ...). */
  public_flags: number;
  flags: number;
  banner: string | null;
  accent_color: number | null;
  avatar_decoration_data: null;
  collectibles: null;
  primary_guild: null;
}

/** A complete user object from its id and name; everything else as a plain account has it. */
export function makeUser(user: Partial<User> & { id: string }): User {
  return {
    username: `user${user.id}`,
    global_name: null,
    discriminator: '0',
    avatar: null,
    public_flags: 0,
    flags: 0,
    banner: null,
    accent_color: null,
    avatar_decoration_data: null,
    collectibles: null,
    primary_guild: null,
    ...user,
  };
}

export interface RoleColors {
  primary_color: number;
  secondary_color: number | null;
  tertiary_color: number | null;
}

export interface Role {
  id: string;
  name: string;
  /** Deprecated by Discord in favour of `colors`, still sent: equals `colors.primary_color`. */
  color: number;
  colors: RoleColors;
  hoist: boolean;
  /** Role icon hash (needs the guild feature ROLE_ICONS on Discord). */
  icon: string | null;
  unicode_emoji: string | null;
  position: number;
  permissions: string;
  managed: boolean;
  mentionable: boolean;
  flags: number;
}

/** A guild member object as Discord sends it (API v10 GuildMemberResponse). */
export interface Member {
  user: User;
  nick: string | null;
  avatar: string | null;
  banner: string | null;
  roles: string[];
  joined_at: string;
  premium_since: string | null;
  deaf: boolean;
  mute: boolean;
  flags: number;
  pending: boolean;
  communication_disabled_until: string | null;
}

/** What a role may be created with besides its name. */
export type RoleOptions = Partial<
  Pick<Role, 'color' | 'colors' | 'hoist' | 'icon' | 'unicode_emoji' | 'permissions' | 'mentionable'>
>;

const MEMBER_OFFSET = 1n;
const ROLE_OFFSET = 1n << 21n;
const CHANNEL_OFFSET = (1n << 21n) + (1n << 20n);
export const MAX_GENERATED = 1 << 20;

/** What @everyone may do in a new guild: what a member without roles has. */
export const EVERYONE_PERMISSIONS = '1071698529857';

export const DEFAULT_GUILD_SIZE: GuildSize = { members: 10, channels: 3, roles: 3 };

export class World {
  readonly guilds = new Map<string, Guild>();
  private readonly ids: SnowflakeGenerator;
  private counter = 0;
  /** byShard's answers, by shard count; emptied whenever a guild is added or removed. */
  private readonly shardsCache = new Map<number, Guild[][]>();

  readonly botUser: User;

  constructor(botUser: Partial<User> & { id: string }, startMs?: bigint) {
    this.botUser = makeUser({ bot: true, ...botUser });
    this.ids = new SnowflakeGenerator(startMs);
  }

  nextId(): string {
    return this.ids.next();
  }

  addGuild(size: Partial<GuildSize> = {}, name?: string): Guild {
    const full = { ...DEFAULT_GUILD_SIZE, ...size };
    for (const [k, v] of Object.entries(full)) {
      if (!Number.isInteger(v) || v < 0 || v >= MAX_GENERATED)
        throw new Error(`guild size ${k}=${v} must be 0..${MAX_GENERATED - 1}`);
    }
    const id = this.nextId();
    this.counter += 1;
    const guild: Guild = {
      id,
      name: name ?? `Guild ${this.counter}`,
      ownerId: full.members > 0 ? String(BigInt(id) + MEMBER_OFFSET) : this.botUser.id,
      size: full,
      features: [],
      extraRoles: [],
      extraMembers: new Map(),
      memberRoles: new Map(),
      rolePositions: new Map(),
    };
    this.guilds.set(id, guild);
    this.shardsCache.clear();
    return guild;
  }

  removeGuild(id: string): Guild | undefined {
    const guild = this.guilds.get(id);
    this.guilds.delete(id);
    this.shardsCache.clear();
    return guild;
  }

  guild(id: string): Guild | undefined {
    return this.guilds.get(id);
  }

  guildsOfShard(shardId: number, shardCount: number): Guild[] {
    return [...(this.byShard(shardCount)[shardId] ?? [])];
  }

  /** The largest number of guilds any shard would carry with `shardCount` shards. */
  maxGuildsPerShard(shardCount: number): number {
    return Math.max(0, ...this.byShard(shardCount).map((g) => g.length));
  }

  /**
   * Every guild by shard for `shardCount` shards, in the order they were added; kept until the
   * guilds change. Every IDENTIFY and READY asks: computed for each, 256 shards of 1,000 guilds
   * cost the simulator 2 × 65 million BigInt shard computations at a cold start.
   */
  private byShard(shardCount: number): Guild[][] {
    let shards = this.shardsCache.get(shardCount);
    if (!shards) {
      shards = Array.from({ length: shardCount }, () => [] as Guild[]);
      for (const g of this.guilds.values()) shards[shardOfGuild(g.id, shardCount)]!.push(g);
      this.shardsCache.set(shardCount, shards);
    }
    return shards;
  }

  roles(guild: Guild): Role[] {
    const everyone = role(guild.id, '@everyone', 0, { permissions: EVERYONE_PERMISSIONS });
    const generated = Array.from({ length: guild.size.roles }, (_, k) =>
      role(String(BigInt(guild.id) + ROLE_OFFSET + BigInt(k)), `Role ${k + 1}`, k + 1, {
        color: ROLE_PALETTE[k % ROLE_PALETTE.length]!,
      }),
    );
    const moved = guild.rolePositions;
    const all = [everyone, ...generated, ...guild.extraRoles];
    return moved.size === 0
      ? all
      : all.map((r) => (moved.has(r.id) ? { ...r, position: moved.get(r.id)! } : r));
  }

  /**
   * Puts a role at `position`, as Modify Guild Role Positions does. Other roles keep theirs;
   * on a tie Discord ranks the role with the lower id higher, and so do bots that compare them.
   */
  moveRole(guild: Guild, roleId: string, position: number): void {
    if (roleId === guild.id) throw new Error('@everyone stays at position 0');
    if (!this.hasRole(guild, roleId)) throw new Error(`moveRole: unknown role ${roleId}`);
    if (!Number.isInteger(position) || position < 1)
      throw new Error(`moveRole: position ${position} must be >= 1`);
    guild.rolePositions.set(roleId, position);
  }

  addRole(guild: Guild, name: string, options: RoleOptions = {}): Role {
    const r = role(this.nextId(), name, guild.size.roles + guild.extraRoles.length + 1, options);
    guild.extraRoles.push(r);
    return r;
  }

  hasRole(guild: Guild, roleId: string): boolean {
    return this.roles(guild).some((r) => r.id === roleId);
  }

  /** A generated member (offset 1..members) or one added through addMember. */
  user(guild: Guild, userId: string): User | undefined {
    const extra = guild.extraMembers.get(userId);
    if (extra) return extra;
    if (userId === this.botUser.id) return this.botUser;
    let offset: bigint;
    try {
      offset = BigInt(userId) - BigInt(guild.id);
    } catch {
      return undefined;
    }
    if (offset < MEMBER_OFFSET || offset >= MEMBER_OFFSET + BigInt(guild.size.members)) return undefined;
    const n = Number(offset);
    return makeUser({ id: userId, username: `member${n}`, global_name: `Member ${n}` });
  }

  addMember(guild: Guild, user: Partial<User> & { id: string }): User {
    const full = makeUser(user);
    guild.extraMembers.set(full.id, full);
    return full;
  }

  removeMember(guild: Guild, userId: string): boolean {
    guild.memberRoles.delete(userId);
    return guild.extraMembers.delete(userId);
  }

  member(guild: Guild, userId: string): Member | undefined {
    const user = this.user(guild, userId);
    if (!user) return undefined;
    return {
      user,
      nick: null,
      avatar: null,
      banner: null,
      roles: guild.memberRoles.get(userId) ?? [],
      joined_at: '2024-01-01T00:00:00.000Z',
      premium_since: null,
      deaf: false,
      mute: false,
      flags: 0,
      pending: false,
      communication_disabled_until: null,
    };
  }

  /** Up to `limit` members, generated ones first: what GUILD_CREATE carries. */
  members(guild: Guild, limit: number): Member[] {
    const out = [this.member(guild, this.botUser.id)!];
    for (let n = 1; n <= guild.size.members && out.length < limit; n++) {
      out.push(this.member(guild, String(BigInt(guild.id) + BigInt(n)))!);
    }
    for (const id of guild.extraMembers.keys()) {
      if (out.length >= limit) break;
      out.push(this.member(guild, id)!);
    }
    return out;
  }

  channels(guild: Guild) {
    return Array.from({ length: guild.size.channels }, (_, k) => ({
      id: String(BigInt(guild.id) + CHANNEL_OFFSET + BigInt(k)),
      type: 0,
      guild_id: guild.id,
      name: `channel-${k + 1}`,
      position: k,
      flags: 0,
      permission_overwrites: [],
      parent_id: null,
      nsfw: false,
      topic: null,
      last_message_id: null,
      rate_limit_per_user: 0,
    }));
  }

  firstChannelId(guild: Guild): string {
    return String(BigInt(guild.id) + CHANNEL_OFFSET);
  }

  memberCount(guild: Guild): number {
    return guild.size.members + guild.extraMembers.size + 1;
  }
}

/** Colours of the generated roles, so bots that show role colours have some to show. */
const ROLE_PALETTE = [0x3498db, 0x2ecc71, 0xe67e22, 0x9b59b6, 0xe74c3c];

function role(id: string, name: string, position: number, options: RoleOptions = {}): Role {
  const primary = options.colors?.primary_color ?? options.color ?? 0;
  return {
    id,
    name,
    hoist: false,
    icon: null,
    unicode_emoji: null,
    position,
    permissions: '0',
    managed: false,
    mentionable: false,
    flags: 0,
    ...options,
    color: primary,
    colors: { primary_color: primary, secondary_color: null, tertiary_color: null, ...options.colors },
  };
}
