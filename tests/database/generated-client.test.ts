// The Prisma client is committed (bot/database/generated) so builds, type-checks and images
// need no generation step. This fails when it is stale: schema.prisma changed (or Prisma was
// upgraded) without `npm run db:generate`.
import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../../testenv/index.js';

const databaseDir = fileURLToPath(new URL('../../bot/database/', import.meta.url));
const prismaCli = fileURLToPath(new URL('../../node_modules/prisma/build/index.js', import.meta.url));

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

it('the committed Prisma client is what prisma generate makes of schema.prisma', () => {
  const tmp = makeTempDir('prisma-generate');
  try {
    copyFileSync(join(databaseDir, 'schema.prisma'), join(tmp.path, 'schema.prisma'));
    execFileSync(process.execPath, [prismaCli, 'generate', '--schema', 'schema.prisma'], {
      cwd: tmp.path,
      stdio: 'pipe',
      // Generation never runs the schema engine, but Prisma 7 insists on one being present.
      env: {
        ...process.env,
        PRISMA_SCHEMA_ENGINE_BINARY: '/bin/true',
        CHECKPOINT_DISABLE: '1',
        PRISMA_HIDE_UPDATE_MESSAGE: '1',
      },
    });
    const fresh = files(join(tmp.path, 'generated'));
    const committed = files(join(databaseDir, 'generated'));
    expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort());
    const stale = [...fresh].filter(([name, text]) => committed.get(name) !== text).map(([name]) => name);
    expect({ stale, fix: 'npm run db:generate' }).toEqual({ stale: [], fix: 'npm run db:generate' });
  } finally {
    tmp.remove();
  }
});
