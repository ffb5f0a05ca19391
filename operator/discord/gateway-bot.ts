// GET /gateway/bot for each bot: Discord's recommended shard count and session start budget
// (and, once per token, the application it belongs to).
// Cached per token, since Discord answers for the token (its application), not for the
// DiscordBot, and rate-limits per token: bots that share a token share one answer and one
// request in flight, and a 429 holds all of them until retry_after. Refreshed on the asking
// bot's interval; a 401 stops calls until the token changes; 5xx and network errors back off
// exponentially. The token is only ever sent to Discord: it is not logged and not part of any
// result or error text (entries are keyed by its SHA-256).
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
 * GET /gateway/bot, and side by side GET /users/@me unless the token's application is known
 * already (it never changes for a token): a new bot waits for one round trip, not two.
 */
export async function fetchGatewayBot(
  apiUrl: string,
  token: string,
  knownApplicationId?: string,
  timeoutMs = 10_000,
): Promise<FetchResult & { status?: number }> {
  const [gateway, me] = await Promise.all([
    discordGet(apiUrl, token, '/gateway/bot', timeoutMs),
    knownApplicationId === undefined ? discordGet(apiUrl, token, '/users/@me', timeoutMs) : undefined,
  ]);
  if (gateway.kind !== 'ok') return gateway;
  const body = gateway.body as {
    shards?: unknown;
    session_start_limit?: {
      total: unknown;
      remaining: unknown;
      reset_after: unknown;
      max_concurrency: unknown;
    };
  };
  const l = body?.session_start_limit;
  // Every number the status and metrics show is checked here, not where it is shown.
  const whole = (n: unknown) => Number.isInteger(n) && (n as number) >= 0;
  if (
    !Number.isInteger(body?.shards) ||
    !l ||
    !Number.isInteger(l.max_concurrency) ||
    !whole(l.total) ||
    !whole(l.remaining) ||
    !whole(l.reset_after)
  )
    return unreadable('/gateway/bot', 'missing fields', gateway.status);
  if (me && me.kind !== 'ok') return me;
  const applicationId = me ? (me.body as { id?: unknown } | null)?.id : knownApplicationId;
  if (!isDiscordId(applicationId)) return unreadable('/users/@me', 'no id', me?.status);
  return {
    kind: 'ok',
    status: gateway.status,
    info: {
      shards: body.shards as number,
      maxConcurrency: l.max_concurrency as number,
      sessionStartLimit: {
        total: l.total as number,
        remaining: l.remaining as number,
        resetAfter: l.reset_after as number,
      },
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
  info?: GatewayBotInfo;
  fetchedAt?: number;
  invalidToken?: boolean;
  retryAt?: number;
  failures: number;
  problem?: DiscordProblem;
  /** The request in flight: bots of this token that ask meanwhile wait for it, not send another. */
  inFlight?: Promise<void>;
  /** When the last answer came (the instant its result is scheduled from). */
  answeredAt?: number;
}

export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 5 * 60_000;

export class GatewayBotCache {
  /** By token hash. */
  private readonly entries = new Map<string, Entry>();
  /** Bot key → the hash of the token it last asked with, to drop entries no bot uses. */
  private readonly tokenOf = new Map<string, string>();

  constructor(
    private readonly apiUrl: string,
    private readonly onRequest: (status: string) => void = () => undefined,
    private readonly fetcher: typeof fetchGatewayBot = fetchGatewayBot,
    private readonly now: () => number = Date.now,
  ) {}

  forget(botKey: string): void {
    const tokenHash = this.tokenOf.get(botKey);
    this.tokenOf.delete(botKey);
    if (tokenHash !== undefined) this.dropIfUnused(tokenHash);
  }

  async lookup(botKey: string, token: string, refreshMs: number, force = false): Promise<DiscordLookup> {
    const tokenHash = createHash('sha256').update(token).digest('hex');
    const previous = this.tokenOf.get(botKey);
    this.tokenOf.set(botKey, tokenHash);
    // A rotated token: what the old one taught us (a 401 included) is not this one's.
    if (previous !== undefined && previous !== tokenHash) this.dropIfUnused(previous);
    let entry = this.entries.get(tokenHash);
    if (!entry) {
      entry = { failures: 0 };
      this.entries.set(tokenHash, entry);
    }
    if (entry.inFlight) {
      // Another bot of this token is asking: its answer is this bot's too.
      await entry.inFlight;
      return this.result(entry, refreshMs, this.now());
    }
    const now = this.now();
    if (entry.invalidToken) return this.result(entry, refreshMs, now);
    const fresh = entry.fetchedAt !== undefined && now - entry.fetchedAt < refreshMs && !force;
    const waiting = entry.retryAt !== undefined && now < entry.retryAt;
    // The same instant decides and schedules: a second reading of the clock can pass retryAt,
    // and an entry that is neither waiting nor fresh would be told to wait the whole refresh.
    if (fresh || waiting) return this.result(entry, refreshMs, now);

    const asked = this.ask(entry, token);
    entry.inFlight = asked;
    try {
      await asked;
    } finally {
      entry.inFlight = undefined;
    }
    return this.result(entry, refreshMs, entry.answeredAt ?? this.now());
  }

  private dropIfUnused(tokenHash: string): void {
    for (const hash of this.tokenOf.values()) if (hash === tokenHash) return;
    this.entries.delete(tokenHash);
  }

  /** One request to Discord; its answer goes into the entry. */
  private async ask(entry: Entry, token: string): Promise<void> {
    const res = await this.fetcher(this.apiUrl, token, entry.info?.applicationId);
    this.onRequest(res.status === undefined ? 'error' : String(res.status));
    const after = this.now();
    entry.answeredAt = after;
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
