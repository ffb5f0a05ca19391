// The demo's and the benchmarks' one way to stop what they started: a program that owns a child
// process through runScope leaves nothing running when it is interrupted or fails.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { interruptedChild, runScope, startOrFallBack } from '../../testenv/run-scope.js';
import { alive } from '../support/alive.js';

const RUN_SCOPE = fileURLToPath(new URL('../../dist/testenv/run-scope.js', import.meta.url));

/** A program that starts a long-running child, owns it, prints both pids, then does `then`. */
function program(then: string): string {
  return `
    import { spawn } from 'node:child_process';
    import { runScope } from ${JSON.stringify(RUN_SCOPE)};
    const scope = runScope({ onInterrupt: (s) => console.log('interrupted by ' + s) });
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    scope.own(child, (c) => new Promise((r) => { c.once('exit', r); c.kill('SIGTERM'); }));
    scope.defer(() => console.log('stopped'));
    console.log(JSON.stringify({ child: child.pid }));
    ${then}
  `;
}

async function run(then: string, signal?: NodeJS.Signals) {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', program(then)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const lines = createInterface({ input: proc.stdout });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  let child = 0;
  for await (const line of lines) {
    out += `${line}\n`;
    if (!child) {
      child = (JSON.parse(line) as { child: number }).child;
      if (signal) proc.kill(signal);
    }
  }
  return { code: await exited, child, out };
}

describe('runScope', () => {
  test('SIGINT and SIGTERM stop what the program owns, newest first, and exit 130', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const r = await run('await new Promise(() => setInterval(() => {}, 1000));', signal);
      expect(r.code).toBe(130);
      expect(r.out).toContain(`interrupted by ${signal}\nstopped\n`);
      expect(alive(r.child)).toBe(false);
    }
  });

  test('an uncaught error (a failed top-level await) stops what it owns and exits 1', async () => {
    const r = await run("await Promise.reject(new Error('the control plane did not start'));");
    expect(r.code).toBe(1);
    // The error goes to stderr, 'stopped' to stdout: both are there, in no reliable order.
    expect(r.out).toContain('the control plane did not start');
    expect(r.out).toContain('stopped');
    expect(alive(r.child)).toBe(false);
  });

  test('a program that ends calls stop() itself; the process then exits on its own', async () => {
    const r = await run('await scope.stop();');
    expect(r.code).toBe(0);
    expect(r.out).toContain('stopped');
    expect(alive(r.child)).toBe(false);
  });

  test('a step that fails to stop is reported by stop(), and the others still stop', async () => {
    const r = await run(`
      scope.defer(() => { throw new Error('the node left traces'); });
      const errors = await scope.stop();
      console.log('errors: ' + errors.map((e) => e.message).join('; '));
    `);
    expect(r.code).toBe(0);
    expect(r.out).toContain('stopped\nerrors: the node left traces\n');
    expect(alive(r.child)).toBe(false);
  });

  test('stopBackTo(mark) stops only what was registered after the mark', async () => {
    const r = await run(`
      const mark = scope.mark();
      scope.defer(() => console.log('attempt stopped'));
      const errors = await scope.stopBackTo(mark);
      console.log('back: ' + errors.length + ' errors');
      await scope.stop();
    `);
    expect(r.code).toBe(0);
    expect(r.out).toContain('attempt stopped\nback: 0 errors\nstopped\n');
    expect(r.out.match(/attempt stopped/g)).toHaveLength(1);
    expect(alive(r.child)).toBe(false);
  });

  test('interruptedChild: a child stopped by Ctrl-C or SIGTERM (also as a cause) is an interruption, a failure is not', () => {
    const killed = Object.assign(new Error('Command failed: bash build.sh'), {
      signal: 'SIGINT',
      status: null,
    });
    expect(interruptedChild(killed)).toBe(true);
    expect(interruptedChild(new Error('build.sh failed', { cause: killed }))).toBe(true);
    expect(interruptedChild(Object.assign(new Error('exit 130'), { status: 130 }))).toBe(true);
    expect(interruptedChild(Object.assign(new Error('exit 1'), { status: 1, signal: null }))).toBe(false);
    expect(interruptedChild(new Error('no signal'))).toBe(false);
  });

  test('startOrFallBack: a failed start is stopped back to where it began, then the fallback runs; a refused fallback rethrows', async () => {
    const scope = runScope();
    const stopped: string[] = [];
    try {
      scope.own('control plane', (x) => stopped.push(x));
      const failingStart = async () => {
        scope.own('attempt', (x) => stopped.push(x));
        throw new Error('the real node did not start');
      };
      const result = await startOrFallBack(
        scope,
        failingStart,
        () => true,
        async (err) => `kwok after: ${err.message}`,
      );
      expect(result).toBe('kwok after: the real node did not start');
      expect(stopped).toEqual(['attempt']);
      await expect(
        startOrFallBack(
          scope,
          failingStart,
          () => false,
          async () => 'never',
        ),
      ).rejects.toThrow('the real node did not start');
      // Not falling back: what the start registered stays, for the scope's own stop.
      expect(stopped).toEqual(['attempt']);
    } finally {
      await scope.stop();
    }
    expect(stopped).toEqual(['attempt', 'attempt', 'control plane']);
  });
});
