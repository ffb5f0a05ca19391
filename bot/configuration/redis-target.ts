// What the value of a bot's Redis Secret (REDIS_URL) names: one server (`redis://`, `rediss://`,
// as ioredis takes it) or a Redis Cluster (`redis+cluster://[user:password@]host:port[,host:port...]`,
// `rediss+cluster://` for TLS). Pure parsing, apart from the client (redis-connection.ts), so a
// process that only reads its configuration (the gateway pod's primary) never loads ioredis.

export interface RedisNode {
  host: string;
  port: number;
}

/** Credentials and TLS, as both forms carry them. */
interface RedisAccess {
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
}

export type RedisTarget =
  | (RedisAccess & {
      readonly cluster: false;
      /** The value as it was given: ioredis takes it as it is. */
      readonly url: string;
      readonly node: RedisNode;
      readonly db: number;
    })
  | (RedisAccess & { readonly cluster: true; readonly nodes: readonly RedisNode[] });

/** A value that names no Redis; the message names the field and never echoes the value. */
export class RedisTargetError extends Error {}

const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\//i;
const DEFAULT_PORT = 6379;

/**
 * The Redis a value names; `field` is what the message calls it (an environment variable, a
 * Secret's key). The only parser of the value: the clients, the operator and KEDA's rendering
 * all take what it returns. Throws RedisTargetError, whose message never holds the value.
 */
export function parseRedisTarget(value: string, field: string): RedisTarget {
  const v = value.trim();
  const scheme = CLUSTER_SCHEME.exec(v);
  return scheme
    ? parseCluster(v.slice(scheme[0].length), scheme[1]!.toLowerCase() === 'rediss', field)
    : parseServer(v, field);
}

function parseServer(v: string, field: string): RedisTarget {
  const refused = () =>
    new RedisTargetError(
      `${field} must be a redis:// or rediss:// URL, or redis+cluster://host:port[,host:port...] for a Redis Cluster`,
    );
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw refused();
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw refused();
  if (!u.hostname) throw new RedisTargetError(`${field} has no host`);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db))
    throw new RedisTargetError(`${field}: the path must be a database number`);
  return {
    cluster: false,
    url: v,
    node: { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : DEFAULT_PORT },
    db: db === '' ? 0 : Number(db),
    ...decodeUserInfo(u.username || undefined, u.password || undefined, field),
    tls: u.protocol === 'rediss:',
  };
}

function parseCluster(rest: string, tls: boolean, field: string): RedisTarget {
  // The authority ends at the first "/", "?" or "#", as in a URL; the user info before its
  // last "@" (a password's own "@" is best percent-encoded, but is not misread either way).
  const end = rest.search(/[/?#]/);
  const authority = end >= 0 ? rest.slice(0, end) : rest;
  const tail = end >= 0 ? rest.slice(end) : '';
  if (/[?#]/.test(tail))
    throw new RedisTargetError(`${field}: a redis+cluster:// URL takes no query or fragment`);
  // A trailing "/" or "/0" is allowed: a cluster has database 0 only.
  if (tail !== '' && tail !== '/' && tail !== '/0')
    throw new RedisTargetError(`${field}: a Redis Cluster has database 0 only (no path other than /0)`);
  const at = authority.lastIndexOf('@');
  const hosts = at >= 0 ? authority.slice(at + 1) : authority;
  const nodes = hosts.split(',').map((h, i) => parseNode(h.trim(), field, i + 1));
  if (at < 0) return { cluster: true, nodes, tls };
  const userInfo = authority.slice(0, at);
  const colon = userInfo.indexOf(':');
  return {
    cluster: true,
    nodes,
    ...(colon >= 0
      ? decodeUserInfo(userInfo.slice(0, colon) || undefined, userInfo.slice(colon + 1), field)
      : decodeUserInfo(userInfo || undefined, undefined, field)),
    tls,
  };
}

function parseNode(text: string, field: string, n: number): RedisNode {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new RedisTargetError(`${field}: cluster node ${n} must be host or host:port`);
  const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new RedisTargetError(`${field}: cluster node ${n} has a port outside 1-65535`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function decodeUserInfo(
  user: string | undefined,
  password: string | undefined,
  field: string,
): { username?: string; password?: string } {
  try {
    return {
      ...(user !== undefined ? { username: decodeURIComponent(user) } : {}),
      ...(password !== undefined ? { password: decodeURIComponent(password) } : {}),
    };
  } catch {
    throw new RedisTargetError(`${field}: the user or password is not valid percent-encoding`);
  }
}
