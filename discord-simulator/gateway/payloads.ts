// Dispatch payloads in the shape Discord sends them (API v10), as far as clients read them.
import type { Guild, World } from '../world.js';
import type { Session } from './sessions.js';

export function readyPayload(
  world: World,
  session: Session,
  guilds: Guild[],
  gatewayUrl: string,
  applicationId: string,
) {
  return {
    v: 10,
    user: { ...world.botUser, bot: true, verified: true, mfa_enabled: false, flags: 0, email: null },
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
    owner_id: guild.ownerId,
    afk_channel_id: null,
    afk_timeout: 300,
    verification_level: 0,
    default_message_notifications: 0,
    explicit_content_filter: 0,
    roles: world.roles(guild),
    emojis: [],
    features: [],
    mfa_level: 0,
    application_id: null,
    system_channel_id: null,
    system_channel_flags: 0,
    rules_channel_id: null,
    vanity_url_code: null,
    description: null,
    banner: null,
    premium_tier: 0,
    premium_subscription_count: 0,
    preferred_locale: 'en-US',
    public_updates_channel_id: null,
    nsfw_level: 0,
    premium_progress_bar_enabled: false,
    stickers: [],
    max_members: 500000,
    max_video_channel_users: 25,
  };
}

/**
 * GUILD_CREATE as sent after READY. Members are capped at the identify's `large_threshold`
 * (Discord sends only part of the member list of large guilds, too).
 */
export function guildCreatePayload(world: World, guild: Guild, largeThreshold: number) {
  const memberCount = world.memberCount(guild);
  return {
    ...guildPayload(world, guild),
    joined_at: '2024-01-01T00:00:00.000Z',
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
  /** Slash command name; `options` are its options as Discord sends them. */
  command: string;
  options?: unknown[];
  /** Sub-command etc. are expressed through options; type 1 = CHAT_INPUT. */
  commandType?: number;
  channelId?: string;
  locale?: string;
  /** Member permissions bit set as a decimal string (admins: '8' and more). */
  permissions?: string;
}

export function interactionPayload(
  world: World,
  guild: Guild,
  spec: InteractionSpec,
  id: string,
  token: string,
  applicationId: string,
) {
  const member = world.member(guild, spec.userId) ?? {
    ...world.member(guild, world.botUser.id)!,
    user: {
      id: spec.userId,
      username: `user${spec.userId}`,
      global_name: null,
      discriminator: '0',
      avatar: null,
    },
  };
  const channelId = spec.channelId ?? world.firstChannelId(guild);
  return {
    id,
    application_id: applicationId,
    type: 2,
    data: {
      id: `${guild.id}0`,
      name: spec.command,
      type: spec.commandType ?? 1,
      options: spec.options ?? [],
    },
    guild_id: guild.id,
    channel_id: channelId,
    channel: {
      id: channelId,
      type: 0,
      guild_id: guild.id,
      name: 'channel-1',
      permissions: '2251799813685247',
      flags: 0,
    },
    member: { ...member, permissions: spec.permissions ?? '1071698529857' },
    token,
    version: 1,
    app_permissions: '2251799813685247',
    locale: spec.locale ?? 'en-US',
    guild_locale: 'en-US',
    entitlements: [],
    authorizing_integration_owners: { '0': guild.id },
    context: 0,
    attachment_size_limit: 8388608,
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
    author: {
      id: m.authorId ?? '1',
      username: 'someone',
      global_name: null,
      discriminator: '0',
      avatar: null,
    },
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
