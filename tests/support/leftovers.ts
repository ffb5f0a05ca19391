// jest's globalSetup and globalTeardown (the default export): every process a test started should be stopped by that
// test. One left running (a server a failed test never stopped, a child's child orphaned by a
// crash) holds the pipes jest reads its output from, and jest then never exits: CI ran into its
// time limit at "Jest did not exit". Such processes are named here, so the leak can be found,
// and killed, so the run ends.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Set in jest's environment before any test runs: every process a test starts inherits it (an
 * orphan too), and nothing else on the machine has it, not even a `| tee` started beside jest.
 */
export const TEST_RUN_ENV = 'SHARDWARDEN_TEST_RUN';

interface Proc {
  pid: number;
  ppid: number;
  /** This run's mark in its environment. */
  marked: boolean;
  command: string;
}

function processes(mark: string | undefined): Proc[] {
  const found: Proc[] = [];
  const needle = mark && `\0${TEST_RUN_ENV}=${mark}\0`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command in (parentheses) may hold spaces: the fields after it are split.
      const [state, ppidField] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue; // exited, waiting for its parent to reap it
      const ppid = Number(ppidField);
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      const environ = needle ? `\0${readFileSync(`/proc/${entry}/environ`, 'utf8')}` : '';
      found.push({ pid: Number(entry), ppid, marked: !!needle && environ.includes(needle), command });
    } catch {
      // Gone while listed.
    }
  }
  return found;
}

/**
 * What the test run left running: its descendants (whatever environment a test gave them), and
 * processes carrying the run's mark (a test's child's child orphaned when its parent died is no
 * longer a descendant). Never jest itself or its ancestors.
 */
export function leftovers(all: Proc[], self = process.pid): Proc[] {
  const byPid = new Map(all.map((p) => [p.pid, p]));
  const lineOf = (p: Proc | undefined): number[] => {
    const line: number[] = [];
    for (let at = p; at && !line.includes(at.pid); at = byPid.get(at.ppid)) line.push(at.pid);
    return line;
  };
  const ancestors = new Set(lineOf(byPid.get(self)));
  return all.filter((p) => !ancestors.has(p.pid) && (p.marked || lineOf(p).includes(self)));
}

/** What this run has left running now, on this machine. */
export function runLeftovers(): Proc[] {
  return leftovers(processes(process.env[TEST_RUN_ENV]));
}

/** Sends `signal` to each of `pids` still there. */
function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** How long what the run left gets to stop on SIGTERM before it is killed. */
const SIGNAL_GRACE_MS = 3_000;

/**
 * Ctrl-C or a time limit's SIGTERM ends jest without its teardown, and the tests' own exit and
 * signal hooks never run: each test file has its own copy of `process`. Handled here, in jest's
 * real process: what the run started is asked to stop (SIGTERM), killed after a grace period,
 * and jest exits as the signal would have ended it. Without this, processes in a group of their
 * own (the pod runner's pods, the terminal's Ctrl-C does not reach them) kept running.
 */
function stopRunOnSignal(): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping what the test run started\n`);
    signalAll(
      runLeftovers().map((p) => p.pid),
      'SIGTERM',
    );
    const deadline = Date.now() + SIGNAL_GRACE_MS;
    const check = setInterval(() => {
      const left = runLeftovers().map((p) => p.pid);
      if (left.length > 0 && Date.now() < deadline) return;
      clearInterval(check);
      signalAll(left, 'SIGKILL');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }, 100);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

/**
 * jest's globalSetup and globalTeardown both (jest.config.js): jest loads each as a module of its
 * own, outside the tests' module mapping, so they cannot share a constant across files. Before
 * the run (no mark yet) it marks the run; after it, it names and kills what the run left running.
 */
export default function testRunProcesses(): void {
  if (!process.env[TEST_RUN_ENV]) {
    process.env[TEST_RUN_ENV] = randomUUID();
    stopRunOnSignal();
    return;
  }
  // What else jest holds open at its end (sockets, timers, pipes): a leak a process list does
  // not show. Printed in CI, where --forceExit would otherwise hide it.
  if (process.env.CI === 'true') {
    const open = new Map<string, number>();
    for (const r of process.getActiveResourcesInfo()) open.set(r, (open.get(r) ?? 0) + 1);
    process.stderr.write(
      `\nstill open in jest at its teardown: ${JSON.stringify(Object.fromEntries(open))}\n`,
    );
  }
  const left = runLeftovers();
  if (left.length === 0) return;
  process.stderr.write(
    `\nleft running by the tests (a test did not stop them; killed now):\n${left
      .map((p) => `  pid ${p.pid}: ${p.command.slice(0, 200)}`)
      .join('\n')}\n`,
  );
  signalAll(
    left.map((p) => p.pid),
    'SIGKILL',
  );
}
