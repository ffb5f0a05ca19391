// REST under /api/v10: bot-token auth, global and per-route rate limits with Discord's
// headers and 429 bodies, then the route handlers. Every call is recorded.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DiscordSimulator } from '../simulator.js';
import { HttpError, discordError, matchPath, readJson, requestTarget, sendJson } from './http.js';
import { routes } from './routes.js';

const PREFIX = '/api/v10';

export async function handleRest(
  sim: DiscordSimulator,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { method, path, query } = requestTarget(req, PREFIX);
  const recorder = sim.recorder;
  recorder.counters.restRequests += 1;
  let routeTemplate = `${method} ${path}`;
  let status = 500;
  let recordedBody: unknown;
  let tokenIndex: number | undefined;
  // Discord sends the route bucket's X-RateLimit-* headers on errors too; clients keep the bucket.
  let rateHeaders: Record<string, string> = {};
  try {
    let params: Record<string, string> | undefined;
    const route = routes.find((r) => r.method === method && (params = matchPath(r.template, path)));
    if (!route || !params) throw discordError(404, 0, '404: Not Found');
    routeTemplate = `${method} ${route.template}`;
    const major = route.major ? (params[route.major] ?? '') : '';

    let botToken: string | undefined;
    if (route.auth === 'bot') {
      const auth = req.headers.authorization ?? '';
      botToken = auth.startsWith('Bot ') ? auth.slice(4) : undefined;
      tokenIndex = botToken === undefined ? undefined : sim.tokenIndex(botToken);
      if (!botToken || !sim.tokenValid(botToken)) {
        recorder.counters.restInvalid += 1;
        rateHeaders = rateLimitHeaders(sim.rateLimits.peek(botToken, routeTemplate, major));
        throw discordError(401, 0, '401: Unauthorized');
      }
    }

    const injected = sim.rateLimits.takeFailure(routeTemplate, botToken);
    if (injected !== undefined) {
      rateHeaders = rateLimitHeaders(sim.rateLimits.peek(botToken, routeTemplate, major));
      throw discordError(injected, 0, `${injected}: injected by the simulator`);
    }

    const verdict = sim.rateLimits.check(botToken, routeTemplate, major);
    if (!verdict.ok) {
      recorder.counters.rest429 += 1;
      recorder.counters.restInvalid += 1;
      recorder.violation('rest-rate-limit', `${verdict.scope} rate limit on ${routeTemplate}`);
      const retryAfter = Math.max(0.001, verdict.retryAfterMs / 1000);
      const headers: Record<string, string> = {
        ...rateLimitHeaders({ ...verdict, remaining: 0 }),
        'x-ratelimit-scope': verdict.scope,
        'retry-after': String(Math.ceil(retryAfter)),
      };
      if (verdict.scope === 'global') headers['x-ratelimit-global'] = 'true';
      status = 429;
      req.resume();
      sendJson(
        res,
        429,
        {
          message: 'You are being rate limited.',
          retry_after: Number(retryAfter.toFixed(3)),
          global: verdict.scope === 'global',
        },
        headers,
      );
      return;
    }
    rateHeaders = rateLimitHeaders(verdict);

    const body = await readJson(req);
    recordedBody = body;
    const result = route.handle({ sim, params, query, body });
    status = result.status;
    sendJson(res, result.status, result.body, rateHeaders);
  } catch (err) {
    const httpErr =
      err instanceof HttpError ? err : discordError(500, 0, `simulator error: ${(err as Error).message}`);
    status = httpErr.status;
    if (status === 403) recorder.counters.restInvalid += 1;
    req.resume();
    sendJson(res, httpErr.status, httpErr.body, rateHeaders);
  } finally {
    recorder.restCalls.push({
      at: Date.now(),
      method,
      path,
      route: routeTemplate,
      status,
      body: recordedBody,
      tokenIndex,
    });
  }
}

function rateLimitHeaders(state: {
  limit: number;
  remaining: number;
  resetAt: number;
  bucket: string;
}): Record<string, string> {
  return {
    'x-ratelimit-limit': String(state.limit),
    'x-ratelimit-remaining': String(state.remaining),
    'x-ratelimit-reset': (state.resetAt / 1000).toFixed(3),
    'x-ratelimit-reset-after': (Math.max(0, state.resetAt - Date.now()) / 1000).toFixed(3),
    'x-ratelimit-bucket': state.bucket,
  };
}

export function isRestPath(path: string): boolean {
  return path.startsWith(`${PREFIX}/`);
}
