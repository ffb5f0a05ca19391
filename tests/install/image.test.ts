// The image cannot be built here (no Docker). What is checked instead: every command the
// Dockerfile, docs/install.md, the chart and the operator's rendered pods name is one the built
// CLI has, and the Dockerfile's runtime stage, reproduced as a folder from its COPY lines, can
// start each of them (no missing module or file).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { makeTempDir } from '../../testenv/index.js';
import { ENTRYPOINT } from '../support/built-entrypoint.js';

const dockerfile = readFileSync('Dockerfile', 'utf8');

/** Commands each source names, with where they come from. */
function namedCommands(): Map<string, string[]> {
  const named = new Map<string, string[]>();
  const add = (command: string, where: string) => named.set(command, [...(named.get(command) ?? []), where]);
  for (const [, c] of dockerfile.matchAll(/docker run [^\n]*?shardwarden:\S+ ([a-z][a-z-]*)/g))
    add(c!, 'Dockerfile');
  const install = readFileSync('docs/install.md', 'utf8');
  for (const [, c] of install.matchAll(/^\| `([a-z][a-z-]*)` \|/gm)) add(c!, 'docs/install.md');
  for (const [, c] of install.matchAll(/docker run [^\n]*?shardwarden:\S+ ([a-z][a-z-]*)/g))
    add(c!, 'docs/install.md');
  for (const file of readdirSync('operator/rendering'))
    for (const [, c] of readFileSync(`operator/rendering/${file}`, 'utf8').matchAll(
      /args: \['([a-z][a-z-]*)'\]/g,
    ))
      add(c!, `operator/rendering/${file}`);
  for (const [, c] of readFileSync('charts/shardwarden/templates/deployment.yaml', 'utf8').matchAll(
    /args: \["([a-z][a-z-]*)"\]/g,
  ))
    add(c!, 'chart');
  return named;
}

/** The runtime stage's COPY lines as [source in this repository, destination under /app]. */
function runtimeCopies(): [string, string][] {
  const runtime = dockerfile.slice(dockerfile.search(/^FROM \S+ AS runtime$/m));
  return [...runtime.matchAll(/^COPY (?:--from=(\w+) )?(\S+) (\S+)$/gm)].map(([, stage, src, dest]) => {
    // deps and build run `npm ci` and `tsc` in /app: here, this checkout's node_modules and dist/.
    const from = stage ? src!.replace(/^\/app\//, '') : src!;
    return [from, dest!];
  });
}

describe('the image', () => {
  test('the entrypoint runs the CLI under tini, as a non-root user', () => {
    expect(dockerfile).toMatch(
      /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "dist\/bin\/shardwarden.js"\]$/m,
    );
    expect(dockerfile).toMatch(/^USER 10001:10001$/m);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
  });

  test('every command the Dockerfile, the docs, the chart and the operator name is in the built CLI', () => {
    const named = namedCommands();
    for (const c of ['operator', 'gateway', 'worker', 'migrate', 'register-commands'])
      expect({ command: c, named: named.has(c) }).toEqual({ command: c, named: true });
    const usage = /usage: shardwarden <([^>]+)>/.exec(
      execFileSync(process.execPath, [ENTRYPOINT, '--help'], { encoding: 'utf8' }),
    );
    const available = new Set(usage?.[1]!.split('|'));
    const missing = [...named]
      .filter(([c]) => !available.has(c))
      .map(([c, where]) => `${c} (named in ${where.join(', ')})`);
    expect(missing).toEqual([]);
  });

  test("the runtime stage's files start every command: no missing module, migrations or file", () => {
    const tmp = makeTempDir('image-layout');
    try {
      for (const [src, dest] of runtimeCopies()) {
        // Docker: a destination ending in / is a folder the source goes into.
        const target = resolve(tmp.path, dest.endsWith('/') ? join(dest, basename(src)) : dest);
        if (src === 'node_modules') symlinkSync(resolve(src), target);
        else cpSync(src, target, { recursive: true });
      }
      expect(existsSync(join(tmp.path, 'dist/bin/shardwarden.js'))).toBe(true);
      const run = (args: string[], env: Record<string, string> = {}) => {
        const r = spawnSync(process.execPath, ['dist/bin/shardwarden.js', ...args], {
          cwd: tmp.path,
          encoding: 'utf8',
          timeout: 30_000,
          env: { PATH: process.env.PATH!, NODE_ENV: 'production', ...env },
        });
        return { args: args.join(' '), status: r.status, out: `${r.stdout}${r.stderr}` };
      };
      const started = [
        run(['--help']),
        run(['operator', '--help']),
        // Without their settings the commands stop with a configuration error: they loaded.
        run(['gateway']),
        run(['worker']),
        run(['register-commands']),
        // Reads its migrations before connecting: a refused connection means it found them.
        run(['migrate'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }),
      ];
      for (const r of started) {
        expect({ args: r.args, out: r.out }).not.toEqual({
          args: r.args,
          out: expect.stringMatching(
            /ERR_MODULE_NOT_FOUND|Cannot find (module|package)|ENOENT|does not exist/,
          ),
        });
        expect(r.status).not.toBeNull(); // exited, did not hang
      }
      expect(started[0]!.status).toBe(0);
      expect(started[1]!.status).toBe(0);
      expect(started[5]!.out).toMatch(/ECONNREFUSED|connect/);
    } finally {
      tmp.remove();
    }
  });
});
