// The operator's apiserver client: JSON over one keep-alive connection pool, for the few verbs
// it uses. It replaces `@kubernetes/client-node` at run time, whose generated API and 2,742
// model modules alone made ~80 MB of the operator's memory (docs/benchmarks.md); the models
// stay, as types only.
import { readFileSync, statSync } from 'node:fs';
import {
  Agent as HttpAgent,
  request as httpRequest,
  STATUS_CODES,
  type ClientRequest,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  connectionFromKubeConfig,
  defaultConnection,
  KubeconfigError,
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

/** A 2xx answer that is not JSON (a proxy's page): its text is left out, it could echo anything. */
function parseJson<T>(text: string, what: string, code: number): T {
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${what}: HTTP ${code} with a body that is not JSON`);
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  /** The media type asked for; metadata-only lists and watches ask for PartialObjectMetadata. */
  accept?: string;
  signal?: AbortSignal;
}

export const CONTENT = {
  json: 'application/json',
  apply: 'application/apply-patch+yaml',
  mergePatch: 'application/merge-patch+json',
  /** Objects as metadata only (what controller-runtime's metadata informers ask for). */
  metadataList: 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1',
  metadata: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
} as const;

export interface ClientTimeouts {
  /** A request (not a watch) that has not been answered whole by then is aborted. */
  requestMs: number;
  /** A watch whose response has not begun by then fails. */
  watchHeadersMs: number;
  /** A watch with no bytes (not even a bookmark, sent about once a minute) for this long is stale. */
  watchIdleMs: number;
}

// A stalled apiserver or load balancer must not wedge the reconcile workers (the elector would
// keep renewing, so no standby takes over) or the shutdown.
const DEFAULT_TIMEOUTS: ClientTimeouts = {
  requestMs: 60_000,
  watchHeadersMs: 30_000,
  watchIdleMs: 3 * 60_000,
};

/** Objects per page of a list: a big list arrives (and is parsed) in pieces, as client-go's reflector pages. */
const LIST_PAGE = 500;

/** A bearer token from the kubeconfig, or from a file that the kubelet rewrites as it rotates. */
class BearerToken {
  private value?: string;
  private readFrom = '';

  constructor(private readonly connection: ApiserverConnection) {}

  /**
   * The token; a token file is read again whenever it changed (one stat per request). The
   * kubelet swaps a `..data` symlink to a new file: the inode tells that apart, the mtime and
   * size an edit in place.
   */
  get(): string | undefined {
    const { token, tokenFile } = this.connection;
    if (!tokenFile) return token;
    const { ino, mtimeMs, size } = statSync(tokenFile);
    const version = `${ino}/${mtimeMs}/${size}`;
    if (this.value === undefined || version !== this.readFrom) {
      this.value = readFileSync(tokenFile, 'utf8').trim();
      this.readFrom = version;
    }
    return this.value;
  }
}

function readPem(p: Pem | undefined, field: string): string | undefined {
  if (!p) return undefined;
  if ('data' in p) return p.data;
  try {
    return readFileSync(p.file, 'utf8');
  } catch (err) {
    throw new KubeconfigError(`${field} ${p.file}: cannot read (${(err as NodeJS.ErrnoException).code})`);
  }
}

/** The whole body of a response as text. */
async function readBody(res: IncomingMessage): Promise<string> {
  let text = '';
  res.setEncoding('utf8');
  for await (const chunk of res) text += chunk as string;
  return text;
}

/** A list of objects, as the apiserver answers a list (or a page of one). */
export interface ObjectList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export class KubeClient {
  private readonly agent: HttpAgent;
  private readonly tls: boolean;
  private readonly token: BearerToken;
  private readonly timeouts: ClientTimeouts;

  constructor(
    readonly connection: ApiserverConnection,
    timeouts: Partial<ClientTimeouts> = {},
  ) {
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...timeouts };
    this.tls = connection.server.startsWith('https:');
    this.token = new BearerToken(connection);
    // One pool for every request: keep-alive reuses TLS connections instead of a handshake,
    // a socket and TLS buffers per request. Watches each hold one connection while open.
    this.agent = this.tls
      ? new HttpsAgent({
          keepAlive: true,
          ca: readPem(connection.ca, 'certificate-authority'),
          cert: readPem(connection.clientCert, 'client-certificate'),
          key: readPem(connection.clientKey, 'client-key'),
          rejectUnauthorized: !connection.insecureSkipTlsVerify,
          servername: connection.tlsServerName,
        })
      : new HttpAgent({ keepAlive: true });
  }

  /** From KUBECONFIG, ~/.kube/config or the pod's ServiceAccount (kubeconfig.ts). */
  static async fromDefault(env: NodeJS.ProcessEnv = process.env): Promise<KubeClient> {
    return new KubeClient(await defaultConnection(env));
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

  /** Sends a request; resolves with the response once its headers arrived. */
  private send(
    method: string,
    path: string,
    options: RequestOptions,
    retried = false,
  ): Promise<IncomingMessage> {
    const { query, body, contentType = CONTENT.json, accept = CONTENT.json, signal } = options;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const token = this.token.get();
    const headers: Record<string, string> = { accept };
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const request = this.tls ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      let responded = false;
      const req: ClientRequest = request(
        this.url(path, query),
        { method, headers, agent: this.agent, signal },
        (res) => {
          responded = true;
          resolve(res);
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        // Once answered, a failure reaches whoever reads the response.
        if (responded) return;
        // The apiserver closes idle keep-alive connections; a request sent on one just as it
        // closed is sent once more on a fresh connection. Not a POST: the others are safe to
        // repeat (a repeated write meets a conflict or a 404), creating twice is not.
        if (req.reusedSocket && err.code === 'ECONNRESET' && method !== 'POST' && !retried)
          this.send(method, path, options, true).then(resolve, reject);
        else reject(err);
      });
      req.end(payload);
    });
  }

  /** A request whose answer is JSON; an error status rejects with an ApiError. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const what = `${method} ${path}`;
    const timeout = AbortSignal.timeout(this.timeouts.requestMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    try {
      const res = await this.send(method, path, { ...options, signal });
      const text = await readBody(res);
      const code = res.statusCode ?? 0;
      if (code < 200 || code >= 300) throw apiErrorOf(code, text, what);
      return parseJson<T>(text, what, code);
    } catch (err) {
      if (timeout.aborted && !options.signal?.aborted)
        throw new Error(`${what}: no answer within ${this.timeouts.requestMs / 1000} s`, { cause: err });
      throw err;
    }
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

  /**
   * Every object of a collection, fetched in pages. When the snapshot the pages come from is
   * compacted away before the last page (410), it is listed again in one piece, as client-go does.
   */
  async list<T>(
    path: string,
    options: {
      labelSelector?: string;
      metadataOnly?: boolean;
      signal?: AbortSignal;
      /**
       * Applied to each page's items as the page arrives, so only one page of whole objects is
       * in memory at a time, not the whole list (the informers' cache transforms).
       */
      transform?: (item: T) => T;
    } = {},
  ): Promise<ObjectList<T>> {
    const { labelSelector, metadataOnly, signal, transform } = options;
    const accept = metadataOnly ? CONTENT.metadataList : CONTENT.json;
    const page = async (query: Query): Promise<ObjectList<T>> => {
      const list = await this.request<ObjectList<T>>('GET', path, {
        query: { labelSelector, ...query },
        accept,
        signal,
      });
      // A metadata-only list of nothing has `items: null`.
      const items = list.items ?? [];
      return { metadata: list.metadata, items: transform ? items.map(transform) : items };
    };
    const items: T[] = [];
    let next: string | undefined;
    // A continue token expires (410) when a list outlasts etcd's compaction window. Paging
    // restarts once from the first page, the pages gathered dropped, so a slow relist still
    // never holds the whole list at once; only a second expiry falls back to one unpaged list,
    // as client-go's pager does at the first.
    let restarted = false;
    for (;;) {
      let list: ObjectList<T>;
      try {
        list = await page({ limit: LIST_PAGE, continue: next });
      } catch (err) {
        if (!(next && err instanceof ApiError && err.code === 410)) throw err;
        items.length = 0;
        next = undefined;
        if (restarted) return page({});
        restarted = true;
        continue;
      }
      for (const item of list.items) items.push(item);
      next = list.metadata?.continue || undefined;
      if (!next) return { metadata: { resourceVersion: list.metadata?.resourceVersion }, items };
    }
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
   * Resolves when the stream ends (the server's timeout, or no bytes for watchIdleMs: watch
   * again from the last resourceVersion); rejects when the watch is refused (an ApiError), is
   * not answered within watchHeadersMs, or the connection fails. `signal` ends it quietly.
   */
  async watch<T>(
    path: string,
    query: { resourceVersion: string; labelSelector?: string; metadataOnly?: boolean },
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const { metadataOnly, ...params } = query;
    // Aborted when the response does not begin within watchHeadersMs, or (after it began)
    // when no byte came for watchIdleMs.
    const stale = new AbortController();
    const unanswered = setTimeout(() => stale.abort('unanswered'), this.timeouts.watchHeadersMs);
    let res: IncomingMessage;
    try {
      res = await this.send('GET', path, {
        // The server ends the watch after 5–10 min (client-go's spread) so connections move
        // between apiserver replicas.
        query: {
          ...params,
          watch: 1,
          allowWatchBookmarks: true,
          timeoutSeconds: 300 + Math.floor(Math.random() * 300),
        },
        accept: metadataOnly ? CONTENT.metadata : CONTENT.json,
        signal: AbortSignal.any([signal, stale.signal]),
      });
    } catch (err) {
      if (stale.signal.aborted && !signal.aborted)
        throw new Error(`watch ${path}: no answer within ${this.timeouts.watchHeadersMs / 1000} s`, {
          cause: err,
        });
      throw err;
    } finally {
      clearTimeout(unanswered);
    }
    const idle = setTimeout(() => stale.abort('idle'), this.timeouts.watchIdleMs);
    try {
      const code = res.statusCode ?? 0;
      if (code !== 200) throw apiErrorOf(code, await readBody(res), `watch ${path}`);
      res.setEncoding('utf8');
      const lines = new LineSplitter();
      for await (const chunk of res) {
        idle.refresh();
        for (const line of lines.push(chunk as string)) onEvent(parseWatchLine<T>(line));
      }
    } catch (err) {
      if (!signal.aborted && !stale.signal.aborted) throw err;
    } finally {
      clearTimeout(idle);
    }
  }

  /** Closes the pooled connections (the process is stopping). */
  close(): void {
    this.agent.destroy();
  }
}
