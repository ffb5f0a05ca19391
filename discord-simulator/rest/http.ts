// Minimal request/response helpers for the simulator's HTTP side (REST and control API).
import type { IncomingMessage, ServerResponse } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.message));
  }
}

/** Discord's JSON error: { message, code }. */
export function discordError(status: number, code: number, message: string): HttpError {
  return new HttpError(status, { message, code });
}

/** Method, the path below `prefix`, and the query of a request. */
export function requestTarget(
  req: IncomingMessage,
  prefix: string,
): { method: string; path: string; query: URLSearchParams } {
  const url = new URL(req.url ?? '/', 'http://simulator');
  return {
    method: req.method ?? 'GET',
    path: url.pathname.slice(prefix.length) || '/',
    query: url.searchParams,
  };
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  const type = req.headers['content-type'] ?? '';
  if (!type.includes('application/json')) {
    throw discordError(
      400,
      50035,
      `Invalid Form Body: only application/json bodies are simulated (got ${type || 'none'})`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw discordError(400, 50109, 'The request body contains invalid JSON.');
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (status === 204) {
    res.writeHead(204, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    })
    .end(text);
}

/** Matches `/guilds/:guild_id/roles` against a path; returns the params or undefined. */
export function matchPath(template: string, path: string): Record<string, string> | undefined {
  const t = template.split('/');
  let p: string[];
  try {
    p = path.split('/').map(decodeURIComponent);
  } catch {
    return undefined;
  }
  if (t.length !== p.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < t.length; i++) {
    const seg = t[i]!;
    if (seg.startsWith(':')) {
      if (!p[i]) return undefined;
      params[seg.slice(1)] = p[i]!;
    } else if (seg !== p[i]) return undefined;
  }
  return params;
}
