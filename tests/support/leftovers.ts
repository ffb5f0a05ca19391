// jest's globalTeardown: every process a test started should be stopped by that test. One left
// running (a gateway's cluster process orphaned by a crash, a server a failed test never
// stopped) holds jest's output pipes, and jest then never exits: CI ran into its time limit on
// that. Such processes are named here, so the leak can be found, and killed, so the run ends.
import { readdirSync, readFileSync } from 'node:fs';

interface Proc {
  pid: number;
  ppid: number;
  pgrp: number;
  command: string;
}

function processes(): Proc[] {
  const found: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command in (parentheses) may hold spaces: the fields after it are split.
      const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      found.push({ pid: Number(entry), ppid: Number(ppid), pgrp: Number(pgrp), command });
    } catch {
      // Gone while listed.
    }
  }
  return found;
}

/**
 * What the test run left running: its descendants, and processes of its process group orphaned
 * to init (their parent, a test's child, died first). Not its ancestors nor their other children
 * (make, npm, a `tee` of the CI log share the group).
 */
export function leftovers(all: Proc[] = processes(), self = process.pid): Proc[] {
  const byPid = new Map(all.map((p) => [p.pid, p]));
  const lineOf = (p: Proc | undefined): number[] => {
    const line: number[] = [];
    for (let at = p; at; at = byPid.get(at.ppid)) line.push(at.pid);
    return line;
  };
  const own = byPid.get(self);
  const ancestors = new Set(lineOf(own));
  return all.filter(
    (p) => !ancestors.has(p.pid) && (lineOf(p).includes(self) || (p.pgrp === own?.pgrp && p.ppid === 1)),
  );
}

export default function killLeftovers(): void {
  const left = leftovers();
  if (left.length === 0) return;
  process.stderr.write(
    `\nleft running by the tests (a test did not stop them; killed now):\n${left
      .map((p) => `  pid ${p.pid}: ${p.command.slice(0, 200)}`)
      .join('\n')}\n`,
  );
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
