// The Dockerfile's entrypoint runs dist/bin/shardwarden.js with a command; every command it
// names must exist in the build output and answer.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { ENTRYPOINT } from './support/built-entrypoint.js';

describe('entrypoints', () => {
  test('the Dockerfile compiles and copies the build output the entrypoint needs', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile).toContain('ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/bin/shardwarden.js"]');
    // The build stage compiles these; the runtime stage copies what the trace of dist/ keeps.
    for (const dir of ['bin', 'operator', 'bot']) {
      expect(dockerfile).toContain(`COPY ${dir} ./${dir}`);
      expect(existsSync(`dist/${dir}`)).toBe(true);
    }
    expect(dockerfile).toContain('COPY --from=build /runtime ./');
    expect(dockerfile).toMatch(/^USER 10001:10001$/m);
  });

  test('shardwarden --help lists the commands; an unknown command exits 2 naming it', () => {
    expect(execFileSync(process.execPath, [ENTRYPOINT, '--help'], { encoding: 'utf8' })).toContain(
      'usage: shardwarden <operator|gateway|worker|migrate|register-commands>',
    );
    const bad = spawnSync(process.execPath, [ENTRYPOINT, 'frobnicate'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown command "frobnicate"');
  });

  test('operator --help lists every flag with its variable', () => {
    const out = execFileSync(process.execPath, [ENTRYPOINT, 'operator', '--help'], { encoding: 'utf8' });
    expect(out).toContain('--discord-api-url');
    expect(out).toContain('SHARDWARDEN_LEASE_DURATION');
  });

  test('bad settings stop each process at start with one clear line naming the setting', () => {
    const op = spawnSync(process.execPath, [ENTRYPOINT, 'operator', '--http-port=nope'], {
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: '/nonexistent' },
    });
    expect(op.status).toBe(2);
    expect(op.stderr).toContain(
      '--http-port (SHARDWARDEN_HTTP_PORT): "nope" must be an integer from 0 to 65535',
    );
    const gw = spawnSync(process.execPath, [ENTRYPOINT, 'gateway'], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        SHARDWARDEN_BOT_NAME: 'x',
        SHARDWARDEN_POD_INDEX: '0',
        SHARDWARDEN_TOTAL_SHARDS: 'many',
      },
    });
    expect(gw.status).toBe(2);
    expect(gw.stderr.trim()).toBe('gateway: SHARDWARDEN_TOTAL_SHARDS="many" must be an integer >= 1');
  });
});
