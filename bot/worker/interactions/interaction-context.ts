// One slash-command interaction as a handler sees it: typed access to the options and the
// caller, and the three ways to answer (reply, defer then edit, follow up), all through REST.
import type { REST } from '@discordjs/rest';
import {
  ApplicationCommandOptionType,
  InteractionResponseType,
  MessageFlags,
  PermissionFlagsBits,
  Routes,
  type APIApplicationCommandInteractionDataOption,
  type APIChatInputApplicationCommandInteraction,
} from 'discord.js';
import { UserFacingError, type CommandReply } from '../handlers/bot-module.js';

type Option = APIApplicationCommandInteractionDataOption;

export class InteractionContext {
  /** 'none' until the first response; the dispatcher and handlers share this state. */
  state: 'none' | 'replied' | 'deferred' = 'none';
  readonly subcommandGroup: string | undefined;
  readonly subcommand: string | undefined;
  private readonly options: Option[];

  constructor(
    readonly raw: APIChatInputApplicationCommandInteraction,
    private readonly rest: REST,
    readonly ephemeralByDefault = false,
  ) {
    let options = (raw.data.options ?? []) as Option[];
    let group: string | undefined;
    let sub: string | undefined;
    const first = options[0];
    if (first?.type === ApplicationCommandOptionType.SubcommandGroup) {
      group = first.name;
      options = (first.options ?? []) as Option[];
    }
    const next = options[0];
    if (next?.type === ApplicationCommandOptionType.Subcommand) {
      sub = next.name;
      options = (next.options ?? []) as Option[];
    }
    this.subcommandGroup = group;
    this.subcommand = sub;
    this.options = options;
  }

  get id(): string {
    return this.raw.id;
  }
  get commandName(): string {
    return this.raw.data.name;
  }
  get guildId(): string | undefined {
    return this.raw.guild_id;
  }
  get userId(): string {
    return this.raw.member?.user.id ?? this.raw.user?.id ?? '';
  }

  /** The guild this runs in; commands of a community bot make no sense in DMs. */
  requireGuild(): string {
    if (!this.raw.guild_id) throw new UserFacingError('This command only works inside a server.');
    return this.raw.guild_id;
  }

  /** Administrator, Manage Server or Manage Roles. */
  isAdmin(): boolean {
    const perms = BigInt(this.raw.member?.permissions ?? '0');
    const admin =
      PermissionFlagsBits.Administrator | PermissionFlagsBits.ManageGuild | PermissionFlagsBits.ManageRoles;
    return (perms & admin) !== 0n;
  }

  private option(name: string): Option | undefined {
    return this.options.find((o) => o.name === name);
  }

  getString(name: string, required: true): string;
  getString(name: string, required?: false): string | undefined;
  getString(name: string, required = false): string | undefined {
    const o = this.option(name);
    const value = o && 'value' in o ? o.value : undefined;
    if (value === undefined || value === null || value === '') {
      if (required) throw new UserFacingError(`Option \`${name}\` is required.`);
      return undefined;
    }
    return String(value);
  }

  getInteger(name: string, required = false): number | undefined {
    const raw = this.getString(name, required as false);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n)) throw new UserFacingError(`Option \`${name}\` must be a whole number.`);
    return n;
  }

  /** Role and user options carry an id. */
  getId(name: string, required: true): string;
  getId(name: string, required?: false): string | undefined;
  getId(name: string, required = false): string | undefined {
    const v = this.getString(name, required as false);
    if (v !== undefined && !/^\d{1,20}$/.test(v))
      throw new UserFacingError(`Option \`${name}\` is not an id.`);
    return v;
  }

  /** Answers at once (callback type 4). */
  async reply(reply: CommandReply): Promise<void> {
    await this.rest.post(Routes.interactionCallback(this.raw.id, this.raw.token), {
      body: { type: InteractionResponseType.ChannelMessageWithSource, data: this.body(reply) },
      auth: false,
    });
    this.state = 'replied';
  }

  /** Acknowledges now ("thinking..."), to be edited with the result later (callback type 5). */
  async defer(ephemeral = this.ephemeralByDefault): Promise<void> {
    await this.rest.post(Routes.interactionCallback(this.raw.id, this.raw.token), {
      body: {
        type: InteractionResponseType.DeferredChannelMessageWithSource,
        data: ephemeral ? { flags: MessageFlags.Ephemeral } : {},
      },
      auth: false,
    });
    this.state = 'deferred';
  }

  /** Replaces the deferred or original response. */
  async editReply(reply: CommandReply): Promise<void> {
    await this.rest.patch(Routes.webhookMessage(this.raw.application_id, this.raw.token, '@original'), {
      body: this.body(reply),
      auth: false,
    });
  }

  /** An extra message after the first response (up to 15 minutes after the interaction). */
  async followUp(reply: CommandReply): Promise<void> {
    await this.rest.post(Routes.webhook(this.raw.application_id, this.raw.token), {
      body: this.body(reply),
      auth: false,
    });
  }

  /** Answers in whichever way fits the current state. */
  async respond(reply: CommandReply): Promise<void> {
    if (this.state === 'none') await this.reply(reply);
    else if (this.state === 'deferred') await this.editReply(reply);
    else await this.followUp(reply);
  }

  private body(reply: CommandReply) {
    const r = typeof reply === 'string' ? { content: reply } : reply;
    const ephemeral = r.ephemeral ?? this.ephemeralByDefault;
    return {
      ...(r.content !== undefined ? { content: r.content } : {}),
      ...(r.embeds ? { embeds: r.embeds } : {}),
      ...(ephemeral ? { flags: MessageFlags.Ephemeral } : {}),
      // A bot's reply never pings anyone by accident.
      allowed_mentions: { parse: [] },
    };
  }
}
