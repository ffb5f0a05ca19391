// Checked without building the image (built-image.test.ts builds and runs it): every command
// the Dockerfile, docs/install.md, the chart and the operator's rendered pods name is one the
// built CLI has, and the Dockerfile's runtime stage, reproduced as a folder from its COPY lines
// (the traced runtime files included), can start each of them (no missing module or file).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
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

/**
 * The runtime stage's COPY lines into /app as [source here, destination under /app]. The build
 * stage's traced folder is `traced` (made by the same script); its other files (tini) are not
 * the app's.
 */
function runtimeCopies(traced: string): [string, string][] {
  const runtime = dockerfile.slice(dockerfile.search(/^FROM \S+ AS runtime$/m));
  return [...runtime.matchAll(/^COPY (?:--from=(\w+) )?(\S+) (\S+)$/gm)].flatMap(
    ([, stage, src, dest]): [string, string][] => {
      if (!stage) return [[src!, dest!]];
      return src === '/runtime' ? [[traced, dest!]] : [];
    },
  );
}

describe('the image', () => {
  test('the entrypoint runs the CLI under tini, as a non-root user', () => {
    expect(dockerfile).toMatch(
      /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "dist\/bin\/shardwarden.js"\]$/m,
    );
    expect(dockerfile).toMatch(/^USER 10001:10001$/m);
  });

  test('every stage is the Node base of .nvmrc, pinned by version and overridable', () => {
    const nodeVersion = readFileSync('.nvmrc', 'utf8').trim();
    expect(dockerfile).toMatch(
      new RegExp(`^ARG NODE_IMAGE=node:${nodeVersion.replaceAll('.', '\\.')}-bookworm-slim$`, 'm'),
    );
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map(([, image]) => image);
    expect(froms).toEqual(froms.map(() => '${NODE_IMAGE}'));
  });

  test('the runtime stage takes only the traced runtime files, no installed node_modules', () => {
    const runtime = dockerfile.slice(dockerfile.search(/^FROM \S+ AS runtime$/m));
    expect(dockerfile).toMatch(/^RUN node dist\/bin\/runtime-files\.js \/runtime$/m);
    expect(runtime).toMatch(/^COPY --from=build \/runtime \.\/$/m);
    expect(runtime).not.toMatch(/node_modules/);
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
      const traced = join(tmp.path, 'traced');
      execFileSync(process.execPath, ['dist/bin/runtime-files.js', traced], { stdio: 'ignore' });
      const app = join(tmp.path, 'app');
      for (const [src, dest] of runtimeCopies(traced)) {
        // Docker: a folder's contents go into the destination folder.
        cpSync(src, resolve(app, dest), { recursive: true });
      }
      expect(existsSync(join(app, 'dist/bin/shardwarden.js'))).toBe(true);
      expect(existsSync(join(app, 'node_modules/typescript'))).toBe(false);
      const run = (args: string[], env: Record<string, string> = {}) => {
        const r = spawnSync(process.execPath, ['dist/bin/shardwarden.js', ...args], {
          cwd: app,
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
