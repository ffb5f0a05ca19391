// What a real node (testenv/real-node.ts) may leave on the host, to check that stopping it
// left nothing: processes, mounts, network namespaces, links, iptables rules, cgroups, folders.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** What a node may leave on a host; equal before start and after stop. */
export function hostSnapshot(marker: string) {
  const tryRun = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  // Rules and user chains; a built-in chain that iptables-nft registers on first use, empty
  // and with policy ACCEPT, filters nothing and is not counted.
  const iptablesRules = (family: string) =>
    tryRun(`${family}-save`, [])
      .split('\n')
      .filter((l) => l.startsWith('-A ') || / - \[\d+:\d+\]$/.test(l))
      .map((l) => (l.startsWith(':') ? l.split(' ')[0] : l));
  const cgroups = readdirSync('/sys/fs/cgroup').flatMap((h) => {
    try {
      return readdirSync(join('/sys/fs/cgroup', h))
        .filter((d) => d.startsWith('shardwarden-node-'))
        .map((d) => `${h}/${d}`);
    } catch {
      return [];
    }
  });
  const processes = readdirSync('/proc').filter((p) => {
    try {
      return /^\d+$/.test(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
    } catch {
      return false;
    }
  });
  return {
    mounts: readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((mp) => mp.includes(marker) || mp.includes('netns') || mp.includes('containerd')),
    netns: tryRun('ip', ['netns', 'list']),
    links: tryRun('ip', ['-o', 'link', 'show'])
      .split('\n')
      .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
      .filter((name) => /^(veth|swbr)/.test(name)),
    iptables: iptablesRules('iptables'),
    ip6tables: iptablesRules('ip6tables'),
    cgroups,
    processes,
    runContainerd: existsSync('/run/containerd'),
    nodeFolders: readdirSync('/tmp').filter((d) => d.startsWith('shardwarden-node-')),
  };
}

export type HostSnapshot = ReturnType<typeof hostSnapshot>;

/**
 * What `after` has that `before` had not, by kind. Not equality: something else on the host
 * (not a node) may remove what it made meanwhile.
 */
export function leftSince(before: HostSnapshot, after: HostSnapshot): Record<string, string[]> {
  const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : String(v).split('\n').filter(Boolean));
  return Object.fromEntries(
    Object.entries(after).map(([kind, items]) => {
      const was = list(before[kind as keyof HostSnapshot]);
      return [kind, list(items).filter((i) => !was.includes(i))];
    }),
  );
}

/** `left` with every kind empty: what toEqual compares it with. */
export function nothingLeft(left: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.keys(left).map((kind) => [kind, []]));
}

/**
 * The host as a real node found it and as it left it, both taken while that node holds the
 * machine-wide lock (RealNodeOptions.onLocked, StopOptions.beforeRelease): another run's node,
 * before or after ours, is never on the host at either moment.
 */
export function hostWitness(marker = 'shardwarden-node-') {
  let before: HostSnapshot | undefined;
  let after: HostSnapshot | undefined;
  return {
    onLocked: () => void (before = hostSnapshot(marker)),
    beforeRelease: () => void (after = hostSnapshot(marker)),
    /** What the node left, by kind (see leftSince); both snapshots must have been taken. */
    left: (): Record<string, string[]> => {
      if (!before || !after) throw new Error('hostWitness: the node did not take both snapshots');
      return leftSince(before, after);
    },
  };
}
