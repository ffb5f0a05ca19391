// discord.js v14 options for the Ear: no caches worth the name, no sweepers, only the configured
// intents. The gateway keeps nothing about guilds, members or messages: it forwards and forgets.
import { Options, type ClientOptions } from 'discord.js';

const ZERO = 0;

export function earClientOptions(intents: number, discordApiUrl: string): ClientOptions {
  return {
    intents,
    rest: { api: discordApiUrl },
    // Managers discord.js allows to limit are set to 0. (GuildManager, channels and roles cannot
    // be limited without breaking discord.js; guild objects without members or messages are small.)
    makeCache: Options.cacheWithLimits({
      ApplicationCommandManager: ZERO,
      ApplicationEmojiManager: ZERO,
      AutoModerationRuleManager: ZERO,
      BaseGuildEmojiManager: ZERO,
      DMMessageManager: ZERO,
      EntitlementManager: ZERO,
      GuildBanManager: ZERO,
      GuildEmojiManager: ZERO,
      GuildForumThreadManager: ZERO,
      GuildInviteManager: ZERO,
      GuildMemberManager: { maxSize: ZERO, keepOverLimit: (member) => member.id === member.client.user?.id },
      GuildMessageManager: ZERO,
      GuildScheduledEventManager: ZERO,
      GuildStickerManager: ZERO,
      GuildTextThreadManager: ZERO,
      MessageManager: ZERO,
      PresenceManager: ZERO,
      ReactionManager: ZERO,
      ReactionUserManager: ZERO,
      StageInstanceManager: ZERO,
      ThreadManager: ZERO,
      ThreadMemberManager: ZERO,
      UserManager: { maxSize: ZERO, keepOverLimit: (user) => user.id === user.client.user?.id },
      VoiceStateManager: ZERO,
    }),
    sweepers: {},
    failIfNotExists: false,
  };
}
