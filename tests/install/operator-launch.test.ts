// The chart's operator command line is one node accepts: its flags go on node's command line
// (NODE_OPTIONS refuses most V8 flags, and a refused flag is a pod in CrashLoopBackOff), and the
// command is the image's entrypoint with the flags inserted.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { renderOperatorLaunch, type OperatorLaunch } from '../../testenv/index.js';

/** Runs this machine's node with the launch's flags and literal env, as the container would. */
function startNode(launch: OperatorLaunch): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [...launch.nodeFlags, '-e', '0'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...launch.env },
  });
  return { status: r.status, stderr: r.stderr };
}

describe("the chart's operator command line", () => {
  test('node starts with the default flags and env', () => {
    const launch = renderOperatorLaunch();
    expect(launch.nodeFlags).toEqual(expect.arrayContaining(['--heap-growing-percent=25']));
    expect(startNode(launch)).toEqual({ status: 0, stderr: '' });
  });

  test('is the image entrypoint with the flags inserted', () => {
    const launch = renderOperatorLaunch();
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync('Dockerfile', 'utf8'))![1]!;
    expect(JSON.parse(entrypoint)).toEqual(['/usr/bin/tini', '--', 'node', launch.script]);
    expect(launch.args).toEqual(['operator']);
  });

  test('a flag node refuses fails the start (what this test guards against)', () => {
    const refused = startNode(renderOperatorLaunch(['nodeFlags={--no-such-v8-flag}']));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/no-such-v8-flag/);
  });
});
