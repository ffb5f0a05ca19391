// What the shared limiter needs to know about one REST request, derived from its URL alone:
// the route template (ids and tokens replaced; used in metrics and as the bucket fallback),
// the major parameter Discord keys buckets on, and whether the global limit applies.
import { createHash } from 'node:crypto';

export interface RouteInfo {
  method: string;
  /** e.g. `/guilds/:id/members/:id/roles/:id`; never contains ids or tokens. */
  template: string;
  /** Discord's major parameter (guild, channel, webhook or interaction id); `global` if none. */
  major: string;
  /** Interaction callbacks and webhook-token routes are not bound by the bot's global limit. */
  globalExempt: boolean;
}

const SNOWFLAKE = /^\d{1,20}$/;
// Segments after these are identifiers that are not snowflakes (invite and template codes).
const CODE_AFTER = new Set(['invites', 'templates']);

/** A short, stable stand-in for a value that must not be stored (a webhook's token). */
export function digest(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 16);
}

/**
 * `path` is below the API version prefix (e.g. `/guilds/1/members/2/roles/3`), without query.
 * `authenticated` is whether the request carries the bot token.
 */
export function routeInfo(method: string, path: string, authenticated: boolean): RouteInfo {
  const segments = path.split('/').slice(1);
  const m = method.toUpperCase();
  // /interactions/:id/:token/callback
  if (segments[0] === 'interactions' && segments.length >= 3) {
    return {
      method: m,
      template: ['', 'interactions', ':id', ':token', ...segments.slice(3).map(generic)].join('/'),
      major: segments[1]!,
      globalExempt: true,
    };
  }
  // /webhooks/:id/:token[/...]: follow-ups, @original edits and webhook execution use the token.
  if (segments[0] === 'webhooks' && segments.length >= 3) {
    return {
      method: m,
      template: ['', 'webhooks', ':id', ':token', ...segments.slice(3).map(generic)].join('/'),
      major: `webhook-${digest(`${segments[1]}/${segments[2]}`)}`,
      globalExempt: true,
    };
  }
  const template: string[] = [''];
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (segments[i - 1] === 'reactions') {
      // Emoji and user parts of reaction routes share one bucket (as in @discordjs/rest).
      template.push(':reaction');
      break;
    }
    template.push(CODE_AFTER.has(segments[i - 1] ?? '') ? ':code' : generic(s));
  }
  const major =
    ['channels', 'guilds', 'webhooks'].includes(segments[0] ?? '') && SNOWFLAKE.test(segments[1] ?? '')
      ? segments[1]!
      : 'global';
  return { method: m, template: template.join('/'), major, globalExempt: !authenticated };
}

function generic(segment: string): string {
  return SNOWFLAKE.test(segment) ? ':id' : segment;
}

/** The path below `<api>/v<version>` of a request URL, or undefined if the URL is elsewhere. */
export function apiPath(url: string, apiPrefix: string): string | undefined {
  const { pathname } = new URL(url);
  if (!pathname.startsWith(`${apiPrefix}/`)) return undefined;
  return pathname.slice(apiPrefix.length);
}
