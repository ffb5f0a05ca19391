// The REST subset Shardwarden uses, with Discord's status codes and error codes.
import type { DiscordSimulator } from '../simulator.js';
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

function validateCommands(body: unknown): Record<string, unknown>[] {
  if (!Array.isArray(body))
    throw discordError(400, 50035, 'Invalid Form Body: expected an array of commands');
  const names = new Set<string>();
  body.forEach((cmd: Record<string, unknown>, i) => {
    const type = (cmd.type as number | undefined) ?? 1;
    if (
      typeof cmd.name !== 'string' ||
      !/^[-_\p{L}\p{N}]{1,32}$/u.test(cmd.name) ||
      (type === 1 && cmd.name !== cmd.name.toLowerCase())
    ) {
      throw new HttpError(400, {
        message: 'Invalid Form Body',
        code: 50035,
        errors: {
          [i]: {
            name: {
              _errors: [{ code: 'APPLICATION_COMMAND_INVALID_NAME', message: 'Command name is invalid' }],
            },
          },
        },
      });
    }
    if (
      type === 1 &&
      (typeof cmd.description !== 'string' || cmd.description.length < 1 || cmd.description.length > 100)
    ) {
      throw new HttpError(400, {
        message: 'Invalid Form Body',
        code: 50035,
        errors: {
          [i]: {
            description: {
              _errors: [{ code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' }],
            },
          },
        },
      });
    }
    if (names.has(`${type}:${cmd.name}`))
      throw discordError(400, 50035, `Invalid Form Body: duplicate command name ${cmd.name}`);
    names.add(`${type}:${cmd.name}`);
  });
  return body;
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
    handle: ({ sim }) => ok({ ...sim.world.botUser, bot: true, verified: true, flags: 0 }),
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
      return ok({
        ...ctx.sim.guildObject(guild),
        approximate_member_count: ctx.sim.world.memberCount(guild),
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
