// The operator's apiserver client: JSON over one keep-alive connection pool, for the few verbs
// it uses. It replaces `@kubernetes/client-node` at run time, whose generated API and 2,742
// model modules alone made ~80 MB of the operator's memory (docs/benchmarks.md); the models
// stay, as types only.
import { readFileSync, statSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, STATUS_CODES, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  connectionFromKubeConfig,
  defaultConnection,
  kubeconfigFromFiles,
  type ApiserverConnection,
  type KubeConfigLike,
  type Pem,
} from './kubeconfig.js';
import { LineSplitter, parseWatchLine, type WatchEvent } from './watch-lines.js';

/** The apiserver's `Status` body of a refused request. */
export interface ApiStatus {
  kind?: 'Status';
  code?: number;
  reason?: string;
  message?: string;
}

/**
 * A request the apiserver answered with an error: its HTTP code and Status (the fields
 * cluster.ts's apiserverCode/describeError read). The message holds the code and the
 * apiserver's own message, never request headers or the token.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: number,
    readonly body: ApiStatus | undefined,
    what: string,
  ) {
    super(`HTTP ${code}: ${body?.message ?? `${what}: ${STATUS_CODES[code] ?? 'error'}`}`);
  }
}

/** The error for an answer with this status and body (a Status, or anything else the server sent). */
export function apiErrorOf(code: number, bodyText: string, what: string): ApiError {
  let body: ApiStatus | undefined;
  try {
    const parsed = JSON.parse(bodyText) as unknown;
    if (parsed && typeof parsed === 'object' && (parsed as ApiStatus).kind === 'Status')
      body = parsed as ApiStatus;
  } catch {
    /* not JSON: a proxy's page; its text could echo anything, so it is left out */
  }
  return new ApiError(code, body, what);
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

export const CONTENT = {
  json: 'application/json',
  apply: 'application/apply-patch+yaml',
  mergePatch: 'application/merge-patch+json',
} as const;

/** A bearer token from the kubeconfig, or from a file that the kubelet rewrites as it rotates. */
class BearerToken {
  private value?: string;
  private readMtimeMs = -1;

  constructor(private readonly connection: ApiserverConnection) {}

  /** The token; a token file is read again whenever it changed (one stat per request). */
  get(): string | undefined {
    const { token, tokenFile } = this.connection;
    if (token || !tokenFile) return token;
    const mtimeMs = statSync(tokenFile).mtimeMs;
    if (this.value === undefined || mtimeMs !== this.readMtimeMs) {
      this.value = readFileSync(tokenFile, 'utf8').trim();
      this.readMtimeMs = mtimeMs;
    }
    return this.value;
  }
}

function readPem(p: Pem | undefined): string | undefined {
  if (!p) return undefined;
  return 'data' in p ? p.data : readFileSync(p.file, 'utf8');
}

/** A watch with no bytes (not even a bookmark, sent about once a minute) for this long is stale. */
const WATCH_IDLE_MS = 3 * 60_000;

export class KubeClient {
  private readonly agent: HttpAgent;
  private readonly tls: boolean;
  private readonly token: BearerToken;

  constructor(readonly connection: ApiserverConnection) {
    this.tls = connection.server.startsWith('https:');
    this.token = new BearerToken(connection);
    // One pool for every request: keep-alive reuses TLS connections instead of a handshake,
    // a socket and TLS buffers per request. Watches each hold one connection while open.
    this.agent = this.tls
      ? new HttpsAgent({
          keepAlive: true,
          ca: readPem(connection.ca),
          cert: readPem(connection.clientCert),
          key: readPem(connection.clientKey),
          rejectUnauthorized: !connection.insecureSkipTlsVerify,
          servername: connection.tlsServerName,
        })
      : new HttpAgent({ keepAlive: true });
  }

  /** From KUBECONFIG, ~/.kube/config or the pod's ServiceAccount (kubeconfig.ts). */
  static async fromDefault(env: NodeJS.ProcessEnv = process.env): Promise<KubeClient> {
    return new KubeClient(await defaultConnection(env));
  }

  static async fromKubeconfigFile(path: string): Promise<KubeClient> {
    return new KubeClient(await kubeconfigFromFiles([path]));
  }

  /** From the current context of a `@kubernetes/client-node` KubeConfig, as tests hold one. */
  static fromKubeConfig(kc: KubeConfigLike): KubeClient {
    return new KubeClient(connectionFromKubeConfig(kc));
  }

  private url(path: string, query: Query | undefined): URL {
    const url = new URL(this.connection.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private send(
    method: string,
    path: string,
    options: RequestOptions,
    retried = false,
  ): Promise<IncomingMessage> {
    const { query, body, contentType = CONTENT.json, signal } = options;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const token = this.token.get();
    const headers: Record<string, string> = { accept: CONTENT.json };
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const request = this.tls ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(this.url(path, query), { method, headers, agent: this.agent, signal }, resolve);
      req.on('error', (err: NodeJS.ErrnoException) => {
        // The apiserver closes idle keep-alive connections; a request sent on one just as it
        // closed is sent once more on a fresh connection. Not a POST: the others are safe to
        // repeat (a repeated write meets a conflict or a 404), creating twice is not.
        if (req.reusedSocket && err.code === 'ECONNRESET' && method !== 'POST' && !retried)
          resolve(this.send(method, path, options, true));
        else reject(err);
      });
      req.end(payload);
    });
  }

  /** A request whose answer is JSON; an error status rejects with an ApiError. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, options);
    let text = '';
    res.setEncoding('utf8');
    for await (const chunk of res) text += chunk as string;
    const code = res.statusCode ?? 0;
    if (code < 200 || code >= 300) throw apiErrorOf(code, text, `${method} ${path}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, { signal });
  }

  /** GET that resolves to undefined when the object does not exist. */
  async find<T>(path: string, signal?: AbortSignal): Promise<T | undefined> {
    try {
      return await this.get<T>(path, signal);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  list<L>(path: string, labelSelector?: string): Promise<L> {
    return this.request<L>('GET', path, { query: { labelSelector } });
  }

  create<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>('POST', path, { body, signal });
  }

  replace<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>('PUT', path, { body, signal });
  }

  /** Server-side apply under `fieldManager`, taking over conflicting fields when `force`. */
  apply<T>(path: string, body: unknown, fieldManager: string, force: boolean): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: CONTENT.apply,
      query: { fieldManager, force: force || undefined },
    });
  }

  mergePatch<T>(path: string, body: unknown, fieldManager?: string): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: CONTENT.mergePatch, query: { fieldManager } });
  }

  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path);
  }

  /**
   * Watches `path` from `resourceVersion` with bookmarks, handing each event to `onEvent`.
   * Resolves when the stream ends (the server's timeout, or no bytes for WATCH_IDLE_MS: watch
   * again from the last resourceVersion); rejects when the watch is refused (an ApiError) or
   * the connection fails. `signal` ends it quietly.
   */
  async watch<T>(
    path: string,
    query: { resourceVersion: string; labelSelector?: string },
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const idle = new AbortController();
    const res = await this.send('GET', path, {
      // The server ends the watch after 5–10 min (client-go's spread) so connections move
      // between apiserver replicas.
      query: {
        ...query,
        watch: 1,
        allowWatchBookmarks: true,
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
      },
      signal: AbortSignal.any([signal, idle.signal]),
    });
    const code = res.statusCode ?? 0;
    if (code !== 200) {
      let text = '';
      res.setEncoding('utf8');
      for await (const chunk of res) text += chunk as string;
      throw apiErrorOf(code, text, `watch ${path}`);
    }
    res.setEncoding('utf8');
    const lines = new LineSplitter();
    let timer = setTimeout(() => idle.abort(), WATCH_IDLE_MS);
    try {
      for await (const chunk of res) {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(), WATCH_IDLE_MS);
        for (const line of lines.push(chunk as string)) onEvent(parseWatchLine<T>(line));
      }
    } catch (err) {
      if (!signal.aborted && !idle.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the pooled connections (the process is stopping). */
  close(): void {
    this.agent.destroy();
  }
}
