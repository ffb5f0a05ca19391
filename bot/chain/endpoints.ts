// RPC endpoints: validation, the public label each one goes by, and how a failed call is
// classified. RPC URLs often carry API keys in the path, query or userinfo, so outside this
// module an endpoint is only ever named by its origin (or rpc<index>).
import { BaseError, HttpRequestError, shouldThrow, TimeoutError } from 'viem';

export interface RpcEndpoint {
  readonly index: number;
  /** For metrics labels, logs and errors: the origin, or rpc<index> when origins repeat. */
  readonly label: string;
  /**
   * What viem is given as the URL (it puts it in error messages): the origin, plus a
   * fragment naming the index when origins repeat. The real URL stays in `target`.
   */
  readonly publicUrl: string;
  /** The real URL without userinfo, and the Authorization header the userinfo stood for. */
  readonly target: { url: string; headers: Record<string, string> };
}

/** Validates the configured URLs; errors name the index, never the URL. */
export function parseRpcEndpoints(rpcUrls: readonly string[]): RpcEndpoint[] {
  if (!Array.isArray(rpcUrls) || rpcUrls.length === 0) {
    throw new Error('rpcUrls is empty: configure at least one http(s) RPC endpoint');
  }
  const parsed = rpcUrls.map((raw, index) => {
    let url: URL;
    try {
      url = new URL(String(raw).trim());
    } catch {
      throw new Error(`rpcUrls[${index}] is not a valid URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`rpcUrls[${index}] must be an http:// or https:// URL (got ${url.protocol}//)`);
    }
    return url;
  });
  const origins = parsed.map((url) => url.origin);
  return parsed.map((url, index) => {
    const unique = origins.indexOf(url.origin) === origins.lastIndexOf(url.origin);
    const headers: Record<string, string> = {};
    if (url.username || url.password) {
      const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    return {
      index,
      label: unique ? url.origin : `rpc${index}`,
      publicUrl: unique ? url.origin : `${url.origin}/#rpc${index}`,
      target: { url: url.toString(), headers },
    };
  });
}

export type RpcOutcome = 'ok' | 'rate_limited' | 'server_error' | 'timeout' | 'error';

export interface RpcFailure {
  outcome: RpcOutcome;
  /** Whether the next endpoint should be tried (viem's fallback decides the same way). */
  failover: boolean;
  /** Short, secret-free description for logs and errors. */
  summary: string;
}

// JSON-RPC error codes providers use for rate limiting in a 200 response.
const RATE_LIMIT_CODES = new Set([429, -32005, -32007]);

function find<T>(err: unknown, match: (e: unknown) => e is T): T | undefined {
  let current: unknown = err;
  for (let depth = 0; current && depth < 10; depth++) {
    if (match(current)) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Classifies the error one endpoint gave for one call. */
export function classifyRpcError(err: unknown): RpcFailure {
  // The node answered: a revert (or a wallet-side rejection) is the same everywhere.
  if (err instanceof Error && shouldThrow(err)) {
    return { outcome: 'ok', failover: false, summary: 'execution reverted' };
  }
  if (find(err, (e): e is TimeoutError => e instanceof TimeoutError)) {
    return { outcome: 'timeout', failover: true, summary: 'timed out' };
  }
  const http = find(err, (e): e is HttpRequestError => e instanceof HttpRequestError);
  const status = http?.status ?? (err as { status?: number }).status;
  if (status === 429) return { outcome: 'rate_limited', failover: true, summary: 'HTTP 429 (rate limited)' };
  if (status !== undefined && status >= 500) {
    return { outcome: 'server_error', failover: true, summary: `HTTP ${status}` };
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number' && RATE_LIMIT_CODES.has(code)) {
    return { outcome: 'rate_limited', failover: true, summary: `JSON-RPC error ${code} (rate limited)` };
  }
  if (status !== undefined) return { outcome: 'error', failover: true, summary: `HTTP ${status}` };
  const short =
    err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err);
  const cause = http?.cause instanceof Error ? `: ${http.cause.message}` : '';
  return { outcome: 'error', failover: true, summary: `${short}${cause}`.slice(0, 200) };
}

/** Every endpoint failed (or the only one did): says which and how, without URLs. */
export class ChainRpcError extends Error {
  override readonly name = 'ChainRpcError';
  constructor(
    message: string,
    readonly outcome: RpcOutcome,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
