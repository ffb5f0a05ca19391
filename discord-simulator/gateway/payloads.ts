// Dispatch payloads in the shape Discord sends them (API v10), as far as clients read them.
import { EVERYONE_PERMISSIONS, makeUser, type Guild, type World } from '../world.js';
import type { Session } from './sessions.js';

/** The bot's own user as `GET /users/@me` and READY carry it. */
export function currentUser(world: World) {
  return { ...world.botUser, bot: true, verified: true, mfa_enabled: false, locale: 'en-US', email: null };
}

export function readyPayload(
  world: World,
  session: Session,
  guilds: Guild[],
  gatewayUrl: string,
  applicationId: string,
) {
  return {
    v: 10,
    user: currentUser(world),
    guilds: guilds.map((g) => ({ id: g.id, unavailable: true })),
    session_id: session.id,
    session_type: 'normal',
    resume_gateway_url: gatewayUrl,
    shard: [session.shardId, session.shardCount],
    application: { id: applicationId, flags: 0 },
    user_settings: {},
    relationships: [],
    private_channels: [],
    presences: [],
    guild_join_requests: [],
    geo_ordered_rtc_regions: ['simulator'],
    _trace: ['["shardwarden-discord-simulator"]'],
  };
}

export function guildPayload(world: World, guild: Guild) {
  return {
    id: guild.id,
    name: guild.name,
    icon: null,
    splash: null,
    discovery_splash: null,
    home_header: null,
    owner_id: guild.ownerId,
    // Voice regions moved to channels; Discord still sends the field with this value.
    region: 'deprecated',
    afk_channel_id: null,
    afk_timeout: 300,
    widget_enabled: false,
    widget_channel_id: null,
    verification_level: 0,
    default_message_notifications: 0,
    explicit_content_filter: 0,
    roles: world.roles(guild),
    emojis: [],
    features: guild.features,
    mfa_level: 0,
    application_id: null,
    system_channel_id: null,
    system_channel_flags: 0,
    rules_channel_id: null,
    safety_alerts_channel_id: null,
    vanity_url_code: null,
    description: null,
    banner: null,
    premium_tier: 0,
    premium_subscription_count: 0,
    preferred_locale: 'en-US',
    public_updates_channel_id: null,
    nsfw: false,
    nsfw_level: 0,
    premium_progress_bar_enabled: false,
    stickers: [],
    max_presences: null,
    max_members: 500000,
    max_video_channel_users: 25,
    max_stage_video_channel_users: 50,
    incidents_data: null,
  };
}

/**
 * GUILD_CREATE as sent after READY. Members are capped at the identify's `large_threshold`
 * (Discord sends only part of the member list of large guilds, too).
 */
export function guildCreatePayload(
  world: World,
  guild: Guild,
  largeThreshold: number,
  joinedAt = '2024-01-01T00:00:00.000Z',
) {
  const memberCount = world.memberCount(guild);
  return {
    ...guildPayload(world, guild),
    joined_at: joinedAt,
    large: memberCount > largeThreshold,
    unavailable: false,
    member_count: memberCount,
    voice_states: [],
    members: world.members(guild, largeThreshold),
    channels: world.channels(guild),
    threads: [],
    presences: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
  };
}

export interface InteractionSpec {
  guildId: string;
  userId: string;
  /** The command's name; `options` are its options as Discord sends them. */
  command: string;
  options?: unknown[];
  /** 1 CHAT_INPUT (default), 2 USER and 3 MESSAGE (context menu). */
  commandType?: number;
  /** A context-menu command's target: a member of the guild (USER) or a message id (MESSAGE). */
  targetId?: string;
  channelId?: string;
  locale?: string;
  /** Member permissions bit set as a decimal string (admins: '8' and more). */
  permissions?: string;
}

const ALL_PERMISSIONS = '2251799813685247';

export function interactionPayload(
  world: World,
  guild: Guild,
  spec: InteractionSpec,
  id: string,
  token: string,
  applicationId: string,
) {
  const member = memberOrStranger(world, guild, spec.userId);
  const channelId = spec.channelId ?? world.firstChannelId(guild);
  // A channel the world does not have (a test's made-up id) still needs the required fields.
  const channel = world.channels(guild).find((c) => c.id === channelId) ?? {
    id: channelId,
    type: 0,
    guild_id: guild.id,
    name: 'channel',
    position: 0,
    flags: 0,
  };
  return {
    id,
    application_id: applicationId,
    type: 2,
    data: {
      id: `${guild.id}0`,
      name: spec.command,
      type: spec.commandType ?? 1,
      ...(spec.commandType === 2 || spec.commandType === 3
        ? contextMenuTarget(world, guild, spec.commandType, spec.targetId ?? spec.userId, channelId)
        : { options: spec.options ?? [] }),
    },
    guild_id: guild.id,
    channel_id: channelId,
    channel: { ...channel, permissions: ALL_PERMISSIONS },
    member: { ...member, permissions: spec.permissions ?? EVERYONE_PERMISSIONS },
    token,
    version: 1,
    app_permissions: ALL_PERMISSIONS,
    locale: spec.locale ?? 'en-US',
    guild_locale: 'en-US',
    entitlements: [],
    authorizing_integration_owners: { '0': guild.id },
    context: 0,
    attachment_size_limit: 8388608,
  };
}

/** The member, or for a user the world does not know, a member object around a made-up user. */
function memberOrStranger(world: World, guild: Guild, userId: string) {
  return (
    world.member(guild, userId) ?? {
      ...world.member(guild, world.botUser.id)!,
      user: makeUser({ id: userId }),
    }
  );
}

/** `target_id` and `resolved` of a USER (2) or MESSAGE (3) context-menu interaction. */
function contextMenuTarget(world: World, guild: Guild, type: 2 | 3, targetId: string, channelId: string) {
  if (type === 3) {
    return {
      target_id: targetId,
      resolved: { messages: { [targetId]: messagePayload({ id: targetId, guildId: guild.id, channelId }) } },
    };
  }
  const member = world.member(guild, targetId);
  if (!member)
    return { target_id: targetId, resolved: { users: { [targetId]: makeUser({ id: targetId }) } } };
  // Resolved members carry no `user` (it is in `users`), deaf or mute; they carry permissions.
  const { user, deaf: _deaf, mute: _mute, ...partial } = member;
  return {
    target_id: targetId,
    resolved: {
      users: { [targetId]: user },
      members: { [targetId]: { ...partial, permissions: EVERYONE_PERMISSIONS } },
    },
  };
}

/** A MESSAGE_CREATE payload as Discord sends it, for tests and benchmarks that inject messages. */
export function messagePayload(m: {
  id: string;
  guildId: string;
  channelId: string;
  content?: string;
  authorId?: string;
}) {
  return {
    id: m.id,
    guild_id: m.guildId,
    channel_id: m.channelId,
    content: m.content ?? '',
    author: makeUser({ id: m.authorId ?? '1', username: 'someone' }),
    type: 0,
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    embeds: [],
    attachments: [],
    mentions: [],
    mention_roles: [],
    pinned: false,
    tts: false,
    mention_everyone: false,
    flags: 0,
    components: [],
  };
}
