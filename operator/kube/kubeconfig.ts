// Where the apiserver is and who we are to it, as kubectl finds it: the KUBECONFIG files (a
// colon-separated list, merged, the first file's value winning), ~/.kube/config, or in a pod
// the ServiceAccount's token, CA and KUBERNETES_SERVICE_HOST/PORT. Only what the operator
// needs: a token (inline or a file, re-read as it rotates; the file wins, as in client-go) or a
// client certificate. What it cannot honour (exec plugins, auth providers, impersonation, a
// proxy) is refused with an error naming the setting, never silently ignored.
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';

/** One PEM value: inline (a kubeconfig's `*-data`, decoded) or a file read when connecting. */
export type Pem = { data: string } | { file: string };

export interface ApiserverConnection {
  /** `https://host:port` (or http), without a trailing slash. */
  server: string;
  ca?: Pem;
  insecureSkipTlsVerify?: boolean;
  tlsServerName?: string;
  clientCert?: Pem;
  clientKey?: Pem;
  /** A bearer token that never changes. */
  token?: string;
  /** A file holding the bearer token, re-read when it changes (a ServiceAccount's projected token rotates). */
  tokenFile?: string;
}

export const SERVICEACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class KubeconfigError extends Error {
  override name = 'KubeconfigError';
}

interface NamedEntry {
  name?: string;
  cluster?: Record<string, unknown>;
  user?: Record<string, unknown>;
  context?: { cluster?: string; user?: string };
}

interface KubeconfigDocument {
  'current-context'?: string;
  clusters?: NamedEntry[];
  users?: NamedEntry[];
  contexts?: NamedEntry[];
}

/** A kubeconfig document's entries with relative file paths made absolute against its directory. */
function withAbsolutePaths(doc: KubeconfigDocument, dir: string): KubeconfigDocument {
  const abs = (entry: Record<string, unknown> | undefined, keys: string[]) => {
    if (!entry) return entry;
    const out = { ...entry };
    for (const k of keys) {
      const v = out[k];
      if (typeof v === 'string' && v !== '' && !isAbsolute(v)) out[k] = join(dir, v);
    }
    return out;
  };
  return {
    ...doc,
    clusters: doc.clusters?.map((c) => ({ ...c, cluster: abs(c.cluster, ['certificate-authority']) })),
    users: doc.users?.map((u) => ({
      ...u,
      user: abs(u.user, ['client-certificate', 'client-key', 'tokenFile']),
    })),
  };
}

/** Merges documents as kubectl does: the first occurrence of a name, and of current-context, wins. */
function merge(docs: KubeconfigDocument[]): KubeconfigDocument {
  const firstByName = (lists: (NamedEntry[] | undefined)[]) => {
    const seen = new Map<string, NamedEntry>();
    for (const e of lists.flatMap((l) => l ?? [])) if (e.name && !seen.has(e.name)) seen.set(e.name, e);
    return [...seen.values()];
  };
  return {
    'current-context': docs.map((d) => d['current-context']).find((c) => c),
    clusters: firstByName(docs.map((d) => d.clusters)),
    users: firstByName(docs.map((d) => d.users)),
    contexts: firstByName(docs.map((d) => d.contexts)),
  };
}

function str(entry: Record<string, unknown>, key: string): string | undefined {
  const v = entry[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A PEM value: inline base64 data wins over a file, as in client-go. */
function pemOf(base64?: string, file?: string): Pem | undefined {
  if (base64) return { data: Buffer.from(base64, 'base64').toString('utf8') };
  return file ? { file } : undefined;
}

function pem(entry: Record<string, unknown>, key: string): Pem | undefined {
  return pemOf(str(entry, `${key}-data`), str(entry, key));
}

/** Settings the operator cannot honour: ignoring them would talk to the apiserver as someone else, or by another way. */
const REFUSED_USER = ['exec', 'auth-provider', 'username', 'as', 'as-uid', 'as-groups', 'as-user-extra'];
const REFUSED_CLUSTER = ['proxy-url'];

function refuseUnsupported(entry: Record<string, unknown>, keys: string[], who: string): void {
  const found = keys.find((k) => entry[k] !== undefined && entry[k] !== '' && entry[k] !== null);
  if (found)
    throw new KubeconfigError(
      `${who} sets ${found}, which the operator does not support; use a token or a client certificate, without impersonation or a proxy`,
    );
}

/** The connection of a (merged) kubeconfig's current context. */
function connectionOf(doc: KubeconfigDocument, where: string): ApiserverConnection {
  const contextName = doc['current-context'];
  if (!contextName) throw new KubeconfigError(`${where}: no current-context`);
  const context = doc.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new KubeconfigError(`${where}: current-context "${contextName}" is not in contexts`);
  const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster) throw new KubeconfigError(`${where}: cluster "${context.cluster}" is not in clusters`);
  const server = str(cluster, 'server');
  if (!server) throw new KubeconfigError(`${where}: cluster "${context.cluster}" has no server`);
  const user = (context.user ? doc.users?.find((u) => u.name === context.user)?.user : undefined) ?? {};
  refuseUnsupported(user, REFUSED_USER, `${where}: user "${context.user}"`);
  refuseUnsupported(cluster, REFUSED_CLUSTER, `${where}: cluster "${context.cluster}"`);
  const ca = pem(cluster, 'certificate-authority');
  const insecureSkipTlsVerify = cluster['insecure-skip-tls-verify'] === true || undefined;
  if (ca && insecureSkipTlsVerify)
    throw new KubeconfigError(
      `${where}: cluster "${context.cluster}" sets both insecure-skip-tls-verify and certificate-authority; choose one`,
    );
  return {
    server: server.replace(/\/+$/, ''),
    ca,
    insecureSkipTlsVerify,
    tlsServerName: str(cluster, 'tls-server-name'),
    clientCert: pem(user, 'client-certificate'),
    clientKey: pem(user, 'client-key'),
    token: str(user, 'token'),
    tokenFile: str(user, 'tokenFile'),
  };
}

/**
 * A kubeconfig document. JSON (what `kubectl config view -o json` writes) needs no YAML parser;
 * the `yaml` package is loaded only for YAML, as it adds ~13 MB to the process.
 */
async function parseDocument(text: string, where: string): Promise<unknown> {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    /* YAML, then */
  }
  const { parse } = await import('yaml');
  try {
    return parse(text) as unknown;
  } catch (err) {
    throw new KubeconfigError(`${where}: not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Parses one or more kubeconfig documents (text and the directory relative paths start from). */
export async function parseKubeconfig(
  files: { text: string; dir: string; where: string }[],
): Promise<ApiserverConnection> {
  const docs: KubeconfigDocument[] = [];
  for (const { text, dir, where } of files) {
    const doc = await parseDocument(text, where);
    if (doc !== null && typeof doc !== 'object') throw new KubeconfigError(`${where}: not a kubeconfig`);
    docs.push(withAbsolutePaths((doc ?? {}) as KubeconfigDocument, dir));
  }
  return connectionOf(merge(docs), files.map((f) => f.where).join(':'));
}

/** The listed files merged; one that does not exist is skipped, as kubectl skips it. */
export function kubeconfigFromFiles(paths: string[]): Promise<ApiserverConnection> {
  const files = paths.flatMap((path) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return [];
      throw new KubeconfigError(`cannot read kubeconfig ${path}: ${code}`);
    }
    return [{ text, dir: dirname(path), where: path }];
  });
  if (files.length === 0)
    throw new KubeconfigError(`none of the kubeconfig files exists: ${paths.join(':')}`);
  return parseKubeconfig(files);
}

/** In a pod: the ServiceAccount's token file (re-read as it rotates) and CA, and the Service's address. */
export function inClusterConnection(env: NodeJS.ProcessEnv, dir = SERVICEACCOUNT_DIR): ApiserverConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new KubeconfigError('in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set');
  return {
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    ca: { file: join(dir, 'ca.crt') },
    tokenFile: join(dir, 'token'),
  };
}

/**
 * kubectl's order: the files in KUBECONFIG, else ~/.kube/config when it exists, else the pod's
 * ServiceAccount when its token is mounted.
 */
export async function defaultConnection(
  env: NodeJS.ProcessEnv,
  serviceAccountDir = SERVICEACCOUNT_DIR,
): Promise<ApiserverConnection> {
  const listed = (env.KUBECONFIG ?? '').split(':').filter((p) => p !== '');
  if (listed.length) return kubeconfigFromFiles(listed);
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return kubeconfigFromFiles([home]);
  if (existsSync(join(serviceAccountDir, 'token'))) return inClusterConnection(env, serviceAccountDir);
  throw new KubeconfigError(
    'no apiserver to talk to: set KUBECONFIG, write ~/.kube/config, or run in a pod with a ServiceAccount token',
  );
}

/** The current context of a `@kubernetes/client-node` KubeConfig (what tests hold), read through its getters. */
export type KubeConfigLike = Pick<KubeConfig, 'getCurrentCluster' | 'getCurrentUser'>;

export function connectionFromKubeConfig(kc: KubeConfigLike): ApiserverConnection {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeconfigError('the KubeConfig has no current cluster');
  const user = kc.getCurrentUser();
  if (user?.exec || user?.authProvider?.name)
    throw new KubeconfigError(
      `user "${user.name}" authenticates with exec or an auth provider, which the operator does not support`,
    );
  return {
    server: cluster.server.replace(/\/+$/, ''),
    ca: pemOf(cluster.caData, cluster.caFile),
    insecureSkipTlsVerify: cluster.skipTLSVerify || undefined,
    tlsServerName: cluster.tlsServerName,
    clientCert: pemOf(user?.certData, user?.certFile),
    clientKey: pemOf(user?.keyData, user?.keyFile),
    token: user?.token || undefined,
  };
}
