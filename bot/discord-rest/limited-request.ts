// The `makeRequest` strategy handed to @discordjs/rest: every HTTP request the library makes
// (first attempts and its own retries after 429s and 5xx) waits here for the shared limiter,
// then goes out through the library's default strategy (undici), and its response updates the
// shared state and the metrics before the library sees it.
import type { RESTOptions, ResponseLike } from '@discordjs/rest';
import type { Logger } from '../observability/logger.js';
import type { DiscordRestMetrics } from './metrics.js';
import { parseRateLimitHeaders } from './rate-limit-headers.js';
import { apiPath, routeInfo } from './route-info.js';
import type { SharedRestLimiter } from './shared-limiter.js';

type MakeRequest = RESTOptions['makeRequest'];
type RequestInit = Parameters<MakeRequest>[1];

export interface LimitedRequestDeps {
  limiter: SharedRestLimiter;
  metrics: DiscordRestMetrics;
  logger: Logger;
  /** URL path of the API with its version (`/api/v10`), and without (`/api`). */
  versionedPrefix: string;
  unversionedPrefix: string;
  /** Network timeout of one attempt, counted after the limiter let it go. */
  timeoutMs: number;
  send: MakeRequest;
}

function hasAuthorization(headers: RequestInit['headers']): boolean {
  if (!headers) return false;
  if (headers instanceof Headers) return headers.has('authorization');
  const names = Array.isArray(headers)
    ? headers.map(([name]) => name)
    : Object.keys(headers as Record<string, string>);
  return names.some((name) => String(name).toLowerCase() === 'authorization');
}

export function limitedMakeRequest(deps: LimitedRequestDeps): MakeRequest {
  const { limiter, metrics, logger } = deps;
  return async (url: string, init: RequestInit): Promise<ResponseLike> => {
    const path =
      apiPath(url, deps.versionedPrefix) ?? apiPath(url, deps.unversionedPrefix) ?? new URL(url).pathname;
    const route = routeInfo(init.method ?? 'GET', path, hasAuthorization(init.headers));
    const signal = init.signal ?? undefined;
    const waitStarted = performance.now();
    const ticket = await limiter.acquire(route, signal);
    metrics.limiterWait.observe((performance.now() - waitStarted) / 1000);

    // The library's own timeout would also count the limiter wait; this one counts the network.
    const controller = new AbortController();
    const forward = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', forward, { once: true });
    const timer = setTimeout(() => controller.abort(), deps.timeoutMs);
    let res: ResponseLike;
    try {
      res = await deps.send(url, { ...init, signal: controller.signal });
    } catch (err) {
      metrics.requests.inc({ route: route.template, status: '0' });
      await limiter
        .record(ticket, 0)
        .catch((e: Error) => logger.error({ err: e }, 'rate-limit record failed'));
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', forward);
    }

    const headers = parseRateLimitHeaders(res.headers);
    // Recorded before it is counted or logged: once a 429 shows, every process already waits it out.
    await limiter
      .record(ticket, res.status, headers)
      .catch((err: Error) => logger.error({ err }, 'rate-limit record failed'));
    metrics.requests.inc({ route: route.template, status: String(res.status) });
    if (res.status === 429) {
      metrics.rateLimited.inc({ route: route.template, scope: headers.scope });
      logger.warn(
        {
          route: `${route.method} ${route.template}`,
          scope: headers.scope,
          retryAfterMs: headers.retryAfterMs,
        },
        'Discord answered 429; every process of the bot waits it out',
      );
    }
    // Discord does not count shared-scope 429s against the invalid-request limit.
    if (res.status === 401 || res.status === 403 || (res.status === 429 && headers.scope !== 'shared')) {
      metrics.invalid.inc();
    }
    return res;
  };
}
