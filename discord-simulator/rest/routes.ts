// The REST subset Shardwarden uses, with Discord's status codes and error codes.
import type { DiscordSimulator } from '../simulator.js';
import { currentUser } from '../gateway/payloads.js';
import { HttpError, discordError } from './http.js';

export interface RouteContext {
  sim: DiscordSimulator;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
}

export interface RouteResult {
  status: number;
  body?: unknown;
}

export interface Route {
  method: string;
  template: string;
  /** Interaction webhooks and callbacks are authorised by the interaction token, not the bot token. */
  auth: 'bot' | 'none';
  /** The parameter Discord keys the route's bucket on. */
  major?: string;
  handle(ctx: RouteContext): RouteResult;
}

const ok = (body: unknown, status = 200): RouteResult => ({ status, body });
const noContent: RouteResult = { status: 204 };

function guildOf(ctx: RouteContext) {
  const guild = ctx.sim.world.guild(ctx.params.guild_id!);
  if (!guild) throw discordError(404, 10004, 'Unknown Guild');
  return guild;
}

/** Application command types: CHAT_INPUT (slash), USER and MESSAGE (context menu), PRIMARY_ENTRY_POINT. */
const CommandType = { ChatInput: 1, User: 2, Message: 3, PrimaryEntryPoint: 4 } as const;

function invalidField(index: number, field: string, code: string, message: string): HttpError {
  return new HttpError(400, {
    message: 'Invalid Form Body',
    code: 50035,
    errors: { [index]: { [field]: { _errors: [{ code, message }] } } },
  });
}

/**
 * Discord's naming rules: a slash command's name is lower-case letters, digits, `-`, `_` (no
 * spaces) and it needs a description of 1-100 characters; a context-menu command's name is any
 * 1-32 characters ("Inspect member") and its description is empty.
 */
function validateCommand(cmd: Record<string, unknown>, i: number): Record<string, unknown> {
  const type = (cmd.type as number | undefined) ?? CommandType.ChatInput;
  if (!Object.values(CommandType).includes(type as never))
    throw invalidField(i, 'type', 'BASE_TYPE_CHOICES', `Value must be one of {1, 2, 3, 4}.`);
  const name = cmd.name;
  const nameValid =
    typeof name === 'string' &&
    (type === CommandType.ChatInput
      ? /^[-_'\p{L}\p{N}]{1,32}$/u.test(name) && name === name.toLowerCase()
      : name.trim().length >= 1 && [...name].length <= 32);
  if (!nameValid)
    throw invalidField(i, 'name', 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
  if (type !== CommandType.ChatInput) return { ...cmd, type, description: '' };
  if (typeof cmd.description !== 'string' || cmd.description.length < 1 || cmd.description.length > 100)
    throw invalidField(i, 'description', 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
  return { ...cmd, type };
}

function validateCommands(body: unknown): Record<string, unknown>[] {
  if (!Array.isArray(body))
    throw discordError(400, 50035, 'Invalid Form Body: expected an array of commands');
  const names = new Set<string>();
  return body.map((raw: Record<string, unknown>, i) => {
    const cmd = validateCommand(raw, i);
    const key = `${String(cmd.type)}:${String(cmd.name)}`;
    if (names.has(key))
      throw discordError(400, 50035, `Invalid Form Body: duplicate command name ${String(cmd.name)}`);
    names.add(key);
    return cmd;
  });
}

export const routes: Route[] = [
  { method: 'GET', template: '/gateway', auth: 'none', handle: ({ sim }) => ok({ url: sim.gatewayUrl }) },
  {
    method: 'GET',
    template: '/gateway/bot',
    auth: 'bot',
    handle: ({ sim }) =>
      ok({
        url: sim.gatewayUrl,
        shards: sim.recommendedShards(),
        session_start_limit: sim.gateway.sessionStartLimit(),
      }),
  },
  {
    method: 'GET',
    template: '/users/@me',
    auth: 'bot',
    handle: ({ sim }) => ok(currentUser(sim.world)),
  },
  {
    method: 'PUT',
    template: '/applications/:application_id/commands',
    auth: 'bot',
    handle: (ctx) =>
      ok(ctx.sim.overwriteCommands(ctx.params.application_id!, undefined, validateCommands(ctx.body))),
  },
  {
    method: 'GET',
    template: '/applications/:application_id/commands',
    auth: 'bot',
    handle: (ctx) => ok(ctx.sim.commands(ctx.params.application_id!, undefined)),
  },
  {
    method: 'PUT',
    template: '/applications/:application_id/guilds/:guild_id/commands',
    auth: 'bot',
    major: 'guild_id',
    handle: (ctx) => {
      guildOf(ctx);
      return ok(
        ctx.sim.overwriteCommands(
          ctx.params.application_id!,
          ctx.params.guild_id,
          validateCommands(ctx.body),
        ),
      );
    },
  },
  {
    method: 'POST',
    template: '/interactions/:interaction_id/:interaction_token/callback',
    auth: 'none',
    major: 'interaction_id',
    handle: (ctx) => {
      const result = ctx.sim.interactionCallback(
        ctx.params.interaction_id!,
        ctx.params.interaction_token!,
        ctx.body,
        ctx.query.get('with_response') === 'true',
      );
      return result === undefined ? noContent : ok(result);
    },
  },
  {
    method: 'POST',
    template: '/webhooks/:application_id/:interaction_token',
    auth: 'none',
    major: 'interaction_token',
    handle: (ctx) =>
      ok(ctx.sim.interactionFollowup(ctx.params.application_id!, ctx.params.interaction_token!, ctx.body)),
  },
  {
    method: 'PATCH',
    template: '/webhooks/:application_id/:interaction_token/messages/@original',
    auth: 'none',
    major: 'interaction_token',
    handle: (ctx) =>
      ok(
        ctx.sim.interactionEditOriginal(ctx.params.application_id!, ctx.params.interaction_token!, ctx.body),
      ),
  },
  {
    method: 'GET',
    template: '/guilds/:guild_id',
    auth: 'bot',
    major: 'guild_id',
    handle: (ctx) => {
      const guild = guildOf(ctx);
      if (ctx.query.get('with_counts') !== 'true') return ok(ctx.sim.guildObject(guild));
      return ok({
        ...ctx.sim.guildObject(guild),
        approximate_member_count: ctx.sim.world.memberCount(guild),
        // Presences are not simulated: nobody is online.
        approximate_presence_count: 0,
      });
    },
  },
  {
    method: 'GET',
    template: '/guilds/:guild_id/roles',
    auth: 'bot',
    major: 'guild_id',
    handle: (ctx) => ok(ctx.sim.world.roles(guildOf(ctx))),
  },
  {
    method: 'GET',
    template: '/guilds/:guild_id/members/:user_id',
    auth: 'bot',
    major: 'guild_id',
    handle: (ctx) => {
      const member = ctx.sim.world.member(guildOf(ctx), ctx.params.user_id!);
      if (!member) throw discordError(404, 10007, 'Unknown Member');
      return ok(member);
    },
  },
  ...(['add', 'remove'] as const).map((change): Route => ({
    method: change === 'add' ? 'PUT' : 'DELETE',
    template: '/guilds/:guild_id/members/:user_id/roles/:role_id',
    auth: 'bot',
    major: 'guild_id',
    handle: (ctx) => {
      ctx.sim.changeMemberRole(guildOf(ctx), ctx.params.user_id!, ctx.params.role_id!, change);
      return noContent;
    },
  })),
  {
    method: 'POST',
    template: '/channels/:channel_id/messages',
    auth: 'bot',
    major: 'channel_id',
    handle: (ctx) => ok(ctx.sim.createMessage(ctx.params.channel_id!, ctx.body)),
  },
];
