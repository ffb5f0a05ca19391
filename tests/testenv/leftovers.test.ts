// What jest's teardown kills as left running by the tests (tests/support/leftovers.ts).
import { spawn } from 'node:child_process';
import { leftovers } from '../support/leftovers.js';

const p = (pid: number, ppid: number, pgrp: number, command = `p${pid}`) => ({ pid, ppid, pgrp, command });

test('descendants and orphans of its process group are left over; ancestors and their other children are not', () => {
  const all = [
    p(1, 0, 1, 'init'),
    p(10, 1, 10, 'bash .ci/run'),
    p(11, 10, 10, 'tee ci.log'),
    p(12, 10, 10, 'make test'),
    p(13, 12, 10, 'npm test'),
    p(20, 13, 10, 'jest'),
    p(21, 20, 10, 'gateway primary'),
    p(22, 21, 10, 'gateway cluster'),
    p(23, 1, 10, 'orphaned cluster'),
    p(24, 1, 99, 'a detached daemon of someone else'),
    p(25, 20, 50, 'a child in its own group'),
  ];
  expect(leftovers(all, 20).map((x) => x.command)).toEqual([
    'gateway primary',
    'gateway cluster',
    'orphaned cluster',
    'a child in its own group',
  ]);
});

test('a process this test run started and did not stop is found on this machine', async () => {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    expect(leftovers().map((x) => x.pid)).toContain(child.pid);
  } finally {
    child.kill('SIGKILL');
  }
  await new Promise((r) => child.once('exit', r));
  expect(leftovers().map((x) => x.pid)).not.toContain(child.pid);
});
