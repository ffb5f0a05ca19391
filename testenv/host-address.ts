import { execFileSync } from 'node:child_process';

function ipOutput(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

/**
 * The machine's own IPv4 address (the source of its default route, else its first global
 * address): where pods on a real node reach the host, and what the node registers as its IP.
 */
export function hostAddress(): string | undefined {
  // Any off-link destination: the kernel answers with the default route's source address.
  const src = /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec(ipOutput(['-4', '-o', 'route', 'get', '192.0.2.255']))?.[1];
  if (src && !src.startsWith('127.')) return src;
  return /inet (\d+\.\d+\.\d+\.\d+)/.exec(ipOutput(['-4', '-o', 'addr', 'show', 'scope', 'global']))?.[1];
}
