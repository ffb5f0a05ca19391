import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Beside this file in the source tree; from dist/testenv, the source tree's copy.
const here = dirname(fileURLToPath(import.meta.url));
const buildScript =
  [join(here, 'binaries', 'build.sh'), join(here, '..', '..', 'testenv', 'binaries', 'build.sh')].find((p) =>
    existsSync(p),
  ) ?? join(here, 'binaries', 'build.sh');
const cache = new Map<string, string>();

export type KubeBinary =
  | 'etcd'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kubectl'
  | 'kwok'
  | 'helm'
  | 'kubelet'
  | 'kube-proxy'
  | 'crictl'
  | 'coredns';

/**
 * The folder holding the Kubernetes binaries: SHARDWARDEN_ASSETS when set, otherwise the
 * version-keyed cache, built from Go modules on first use (`make setup` does that up front).
 */
export function kubeBinaryDir(): string {
  const key = `${process.env.SHARDWARDEN_ASSETS ?? ''}|${process.env.SHARDWARDEN_CACHE ?? ''}`;
  const known = cache.get(key);
  if (known) return known;
  let out: string;
  try {
    out = execFileSync('bash', [buildScript], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      // Explicit: under jest, process.env is the test's copy, not what children inherit.
      env: process.env,
    });
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`could not get the Kubernetes binaries: ${stderr || (err as Error).message}`, {
      cause: err,
    });
  }
  const dir = out.trim().split('\n').pop()!;
  cache.set(key, dir);
  return dir;
}

export function kubeBinary(name: KubeBinary): string {
  return join(kubeBinaryDir(), name);
}
