// GET /gateway/bot for each bot: Discord's recommended shard count and session start budget
// (and, once per token, the application it belongs to).
// Cached per bot and refreshed on the bot's interval; a 401 stops calls until the token
// changes; 429 waits retry_after; 5xx and network errors back off exponentially. The token is
// only ever sent to Discord: it is not logged and not part of any result or error text.
import { createHash } from 'node:crypto';
import { isDiscordId } from '../../bot/queues/queue-names.js';

export interface GatewayBotInfo {
  shards: number;
  maxConcurrency: number;
  sessionStartLimit: { total: number; remaining: number; resetAfter: number };
  /**
   * The application the token belongs to: the bot user's id, which Discord gives its bot user
   * (`GET /users/@me`, asked once per token). Identify and REST budgets are counted under it.
   */
  applicationId: string;
}

export type FetchResult =
  | { kind: 'ok'; info: GatewayBotInfo }
  | { kind: 'invalid-token' }
  | { kind: 'rate-limited'; retryAfterMs: number; path: string }
  | { kind: 'unavailable'; message: string };

type GetResult = Exclude<FetchResult, { kind: 'ok' }> | { kind: 'ok'; body: unknown };

/** One authenticated GET; the token goes only into the request. */
async function discordGet(
  apiUrl: string,
  token: string,
  path: string,
  timeoutMs: number,
): Promise<GetResult & { status?: number }> {
  let res: Response;
  try {
    res = await fetch(`${apiUrl}/v10${path}`, {
      headers: {
        authorization: `Bot ${token}`,
        'user-agent': 'DiscordBot (https://shardwarden.io, 0.1) Shardwarden',
      },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    return {
      kind: 'unavailable',
      message: `GET ${path} failed: ${(err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message}`,
    };
  }
  const status = res.status;
  const text = await res.text().catch(() => '');
  if (status === 401) return { kind: 'invalid-token', status };
  if (status === 429) {
    let retryAfterMs = Number(res.headers.get('retry-after') ?? 1) * 1000;
    try {
      retryAfterMs = Math.max(retryAfterMs, Number(JSON.parse(text).retry_after) * 1000 || 0);
    } catch {
      /* headers are enough */
    }
    return { kind: 'rate-limited', retryAfterMs: Math.max(1000, retryAfterMs), path, status };
  }
  if (status !== 200) return { kind: 'unavailable', message: `GET ${path} answered HTTP ${status}`, status };
  try {
    return { kind: 'ok', body: JSON.parse(text), status };
  } catch {
    return { kind: 'unavailable', message: `GET ${path} returned a body that is not JSON`, status };
  }
}

const unreadable = (path: string, what: string, status?: number) => ({
  kind: 'unavailable' as const,
  message: `GET ${path} returned an unreadable body (${what})`,
  status,
});

/**
 * GET /gateway/bot, and GET /users/@me unless the token's application is known already (it
 * never changes for a token).
 */
export async function fetchGatewayBot(
  apiUrl: string,
  token: string,
  knownApplicationId?: string,
  timeoutMs = 10_000,
): Promise<FetchResult & { status?: number }> {
  const gateway = await discordGet(apiUrl, token, '/gateway/bot', timeoutMs);
  if (gateway.kind !== 'ok') return gateway;
  const body = gateway.body as {
    shards?: unknown;
    session_start_limit?: { total: number; remaining: number; reset_after: number; max_concurrency: unknown };
  };
  const l = body?.session_start_limit;
  if (!Number.isInteger(body?.shards) || !l || !Number.isInteger(l.max_concurrency))
    return unreadable('/gateway/bot', 'missing fields', gateway.status);
  let applicationId = knownApplicationId;
  if (applicationId === undefined) {
    const me = await discordGet(apiUrl, token, '/users/@me', timeoutMs);
    if (me.kind !== 'ok') return me;
    const id = (me.body as { id?: unknown } | null)?.id;
    if (!isDiscordId(id)) return unreadable('/users/@me', 'no id', me.status);
    applicationId = id;
  }
  return {
    kind: 'ok',
    status: gateway.status,
    info: {
      shards: body.shards as number,
      maxConcurrency: l.max_concurrency as number,
      sessionStartLimit: { total: l.total, remaining: l.remaining, resetAfter: l.reset_after },
      applicationId,
    },
  };
}

export type DiscordProblem = {
  reason: 'InvalidToken' | 'DiscordRateLimited' | 'DiscordUnavailable';
  message: string;
};

export interface DiscordLookup {
  /** The latest good answer (possibly older than the refresh interval if Discord is failing). */
  info?: GatewayBotInfo;
  fetchedAt?: number;
  problem?: DiscordProblem;
  /** When to look again (ms from now). */
  nextCheckMs: number;
}

interface Entry {
  tokenHash: string;
  info?: GatewayBotInfo;
  fetchedAt?: number;
  invalidToken?: boolean;
  retryAt?: number;
  failures: number;
  problem?: DiscordProblem;
}

export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 5 * 60_000;

export class GatewayBotCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly apiUrl: string,
    private readonly onRequest: (status: string) => void = () => undefined,
    private readonly fetcher: typeof fetchGatewayBot = fetchGatewayBot,
    private readonly now: () => number = Date.now,
  ) {}

  forget(botKey: string): void {
    this.entries.delete(botKey);
  }

  async lookup(botKey: string, token: string, refreshMs: number, force = false): Promise<DiscordLookup> {
    const tokenHash = createHash('sha256').update(token).digest('hex');
    let entry = this.entries.get(botKey);
    if (!entry || entry.tokenHash !== tokenHash) {
      // A new or rotated token: forget what the old one taught us (including a 401).
      entry = { tokenHash, failures: 0 };
      this.entries.set(botKey, entry);
    }
    const now = this.now();
    if (entry.invalidToken) return this.result(entry, refreshMs, now);
    const fresh = entry.fetchedAt !== undefined && now - entry.fetchedAt < refreshMs && !force;
    const waiting = entry.retryAt !== undefined && now < entry.retryAt;
    // The same instant decides and schedules: a second reading of the clock can pass retryAt,
    // and an entry that is neither waiting nor fresh would be told to wait the whole refresh.
    if (fresh || waiting) return this.result(entry, refreshMs, now);

    const res = await this.fetcher(this.apiUrl, token, entry.info?.applicationId);
    this.onRequest(res.status === undefined ? 'error' : String(res.status));
    const after = this.now();
    switch (res.kind) {
      case 'ok':
        Object.assign(entry, {
          info: res.info,
          fetchedAt: after,
          failures: 0,
          retryAt: undefined,
          problem: undefined,
        });
        break;
      case 'invalid-token':
        Object.assign(entry, {
          invalidToken: true,
          problem: {
            reason: 'InvalidToken',
            message: 'Discord rejected the bot token (401 Unauthorized); update the token Secret',
          },
        });
        break;
      case 'rate-limited':
        entry.failures += 1;
        entry.retryAt = after + res.retryAfterMs;
        entry.problem = {
          reason: 'DiscordRateLimited',
          message: `Discord rate-limited GET ${res.path}; retrying in ${Math.ceil(res.retryAfterMs / 1000)}s`,
        };
        break;
      case 'unavailable': {
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** entry.failures);
        entry.failures += 1;
        entry.retryAt = after + delay;
        entry.problem = {
          reason: 'DiscordUnavailable',
          message: `${res.message}; retrying in ${Math.ceil(delay / 1000)}s`,
        };
        break;
      }
    }
    return this.result(entry, refreshMs, after);
  }

  /** What the entry says at `now`, and when to look again. */
  private result(entry: Entry, refreshMs: number, now: number): DiscordLookup {
    let nextCheckMs = refreshMs;
    if (entry.invalidToken)
      nextCheckMs = refreshMs; // nothing to do until the Secret changes
    else if (entry.retryAt !== undefined && entry.retryAt > now) nextCheckMs = entry.retryAt - now;
    else if (entry.fetchedAt !== undefined) nextCheckMs = Math.max(0, entry.fetchedAt + refreshMs - now);
    return { info: entry.info, fetchedAt: entry.fetchedAt, problem: entry.problem, nextCheckMs };
  }
}
