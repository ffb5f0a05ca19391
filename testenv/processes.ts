// Child processes owned by a test: output goes to a log file in the test's temp folder
// (so a failure can point at it), and stop() never leaves anything running.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';

export interface ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** True once the process has exited, for whatever reason. */
  exited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** The last lines of the log, for error messages. */
  tail(lines?: number): string;
}

const running = new Set<ManagedProcess>();

// A test that throws before its afterAll must still not leak servers into the next file.
process.once('exit', () => {
  for (const p of running) p.child.kill('SIGKILL');
});

export function startProcess(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  options: SpawnOptions = {},
): ManagedProcess {
  const log = createWriteStream(logFile, { flags: 'a' });
  // A chunk read after the log ended must not crash the test run (it is only a log).
  log.on('error', () => undefined);
  // env explicitly: under jest, process.env is the test's copy, not what children inherit.
  const child = spawn(command, args, { env: process.env, ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  // 'close', not 'exit': at 'exit' the child's output may still hold its last lines (a
  // redis-server's "bye bye"); ended on 'close', a process that died on its own is ended too.
  // Not awaited by stop(): a gateway's forked processes share its output and may outlive it.
  child.once('close', () => log.end());
  let hasExited = false;
  const exitPromise = once(child, 'exit').then(() => {
    hasExited = true;
    running.delete(managed);
  });
  child.on('error', (err) => {
    log.write(`\n[testenv] failed to start ${command}: ${err.message}\n`);
    hasExited = true;
    running.delete(managed);
  });
  const managed: ManagedProcess = {
    name,
    logFile,
    child,
    exited: () => hasExited,
    async stop(graceMs = 5_000) {
      if (hasExited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitPromise;
      clearTimeout(timer);
    },
    tail(lines = 30) {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '(no log)';
      }
    },
  };
  running.add(managed);
  return managed;
}

/**
 * Polls `check` until it returns true. Fails with the process log when the process dies
 * or the deadline passes, so a broken binary is a loud error, not a hang.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; process?: ManagedProcess } = {},
): Promise<void> {
  const { timeoutMs = 60_000, intervalMs = 100, process: proc } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    if (proc?.exited()) {
      throw new Error(`${proc.name} exited while waiting for ${what}; log ${proc.logFile}:\n${proc.tail()}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const log = proc ? `; log ${proc.logFile}:\n${proc.tail()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}${log}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resident memory of a process in MiB (Linux /proc). */
export function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/**
 * A process's memory in MiB from /proc/<pid>/smaps_rollup: RSS, and the anonymous part of it
 * (heaps, stacks: what the process owns). The rest of RSS is mostly the node binary's code,
 * which forked Node processes share, so summing RSS over a process tree counts it once per
 * process while the machine (and a container's memory) holds it once.
 */
export function memoryMb(pid: number): { rss: number; anonymous: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)![1]) / 1024;
  return { rss: field('Rss'), anonymous: field('Anonymous') };
}

/** Pids of a process's direct children (e.g. Kurasuta's cluster processes). */
/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Processes (not this one) whose command line mentions `text`, e.g. a run's own folder. */
export function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}
