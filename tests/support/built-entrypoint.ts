// Tests that run real processes (operator, gateway, worker) use the compiled entrypoint;
// `make test` builds it first.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startProcess, waitUntil, type ManagedProcess } from '../../testenv/index.js';

export const ENTRYPOINT = fileURLToPath(new URL('../../dist/bin/shardwarden.js', import.meta.url));

export function startShardwarden(
  name: string,
  args: string[],
  env: Record<string, string>,
  logFile: string,
): ManagedProcess {
  if (!existsSync(ENTRYPOINT))
    throw new Error(`${ENTRYPOINT} is missing: run 'make build' (make test does it)`);
  return startProcess(name, process.execPath, [ENTRYPOINT, ...args], logFile, {
    env: { ...process.env, ...env },
  });
}

/** JSON log lines of a process, parsed (other lines skipped). */
export function logLines(proc: ManagedProcess): Record<string, unknown>[] {
  return readFileSync(proc.logFile, 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** The HTTP port a process logged in its "... started" line. */
export async function loggedPort(proc: ManagedProcess): Promise<number> {
  let port = 0;
  await waitUntil(
    `${proc.name} to log its port`,
    async () => {
      port = Number(logLines(proc).find((l) => typeof l.port === 'number')?.port ?? 0);
      return port > 0;
    },
    // Generous: a healthy start takes a second or two, but a busy machine can take far longer
    // to load the modules, and a dead process ends the wait at once anyway.
    { process: proc, timeoutMs: 90_000 },
  );
  return port;
}
