// What jest's teardown kills as left running by the tests (tests/support/leftovers.ts).
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { leftovers, runLeftovers, TEST_RUN_ENV } from '../support/leftovers.js';
import { makeTempDir, waitUntil } from '../../testenv/index.js';

const p = (pid: number, ppid: number, command: string, marked = false) => ({ pid, ppid, marked, command });

test("descendants and the run's marked processes are left over; jest's ancestors and the rest are not", () => {
  const all = [
    p(1, 0, 'init'),
    p(10, 1, 'bash .ci/run'),
    p(11, 10, 'tee ci.log, started beside jest'),
    p(12, 10, 'make test'),
    p(13, 12, 'npm test'),
    p(20, 13, 'jest', true),
    p(21, 20, 'gateway primary', true),
    p(22, 21, 'gateway cluster', true),
    p(23, 1, 'orphaned cluster', true),
    p(24, 7, 'orphaned under a subreaper', true),
    p(25, 1, 'a daemon of someone else'),
    p(26, 20, 'a child given an environment of its own'),
  ];
  expect(leftovers(all, 20).map((x) => x.command)).toEqual([
    'gateway primary',
    'gateway cluster',
    'orphaned cluster',
    'orphaned under a subreaper',
    'a child given an environment of its own',
  ]);
});

test('the run is marked in the environment its tests start processes with', () => {
  // jest's globalSetup (tests/support/leftovers.ts) set it before this file ran.
  expect(process.env[TEST_RUN_ENV]).toMatch(/^[0-9a-f-]{36}$/);
});

test('a process this run started and did not stop is found on this machine, its orphan too', async () => {
  // The shell starts a sleep in the background and exits: the sleep is orphaned, found by its mark.
  const shell = spawn('sh', ['-c', 'sleep 60 & echo $!'], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const orphan = Number((await new Promise<Buffer>((r) => shell.stdout.once('data', r))).toString());
  await new Promise((r) => shell.once('exit', r));
  const direct = spawn('sleep', ['60'], { env: { PATH: process.env.PATH }, stdio: 'ignore' });
  try {
    const found = runLeftovers().map((x) => x.pid);
    expect(found).toContain(orphan);
    expect(found).toContain(direct.pid);
    expect(found).not.toContain(process.pid);
  } finally {
    process.kill(orphan, 'SIGKILL');
    direct.kill('SIGKILL');
  }
  await waitUntil(
    'both gone',
    async () => !runLeftovers().some((x) => x.pid === orphan || x.pid === direct.pid),
  );
});

test.each(['SIGTERM', 'SIGINT'] as const)(
  'a jest run stopped by %s stops what its tests started, a process in a group of its own too',
  async (signal) => {
    const dir = makeTempDir('leftovers-signal');
    const pidsFile = join(dir.path, 'pids');
    const output = join(dir.path, 'jest.log');
    // A run of its own: without this run's mark, its globalSetup marks it and handles signals.
    const env: NodeJS.ProcessEnv = { ...process.env, HANG_PIDS_FILE: pidsFile };
    delete env[TEST_RUN_ENV];
    const log = openSync(output, 'w');
    const jest = spawn(
      process.execPath,
      [
        '--experimental-vm-modules',
        'node_modules/jest/bin/jest.js',
        '--testMatch',
        '**/tests/testenv/fixtures/hang.fixture.ts',
      ],
      { env, cwd: process.cwd(), stdio: ['ignore', log, log] },
    );
    closeSync(log);
    const ended = () => jest.exitCode !== null || jest.signalCode !== null;
    const pids = () => {
      const text = existsSync(pidsFile) ? readFileSync(pidsFile, 'utf8') : '';
      return /^\d+ \d+$/.test(text) ? text.split(' ').map(Number) : [];
    };
    try {
      await waitUntil(
        'the fixture started its processes',
        async () => {
          if (ended()) throw new Error(`the nested jest ended early:\n${readFileSync(output, 'utf8')}`);
          return pids().length === 2;
        },
        { timeoutMs: 60_000 },
      );
      const started = pids();
      expect(started.every(running)).toBe(true);
      jest.kill(signal);
      await waitUntil('the nested jest exited', async () => ended(), { timeoutMs: 20_000 });
      expect(jest.exitCode).toBe(signal === 'SIGINT' ? 130 : 143);
      await waitUntil('both stopped', async () => !started.some(running), { timeoutMs: 10_000 });
    } finally {
      // On a failure: nothing of the nested run outlives the test.
      jest.kill('SIGKILL');
      for (const pid of pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone.
        }
      }
      dir.remove();
    }
  },
  120_000,
);

/** Whether `pid` is a live process (not gone, not a zombie). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
