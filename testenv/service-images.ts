// Redis and Postgres images for the real node, made without a registry: the same Debian
// redis-server and postgres binaries the host-process test environment runs (testenv/redis.ts,
// testenv/postgres.ts), with the shared libraries `ldd` finds for them, on busybox for a shell.
// The archives are cached under the image cache keyed by their inputs (every file's and shared
// library's path, size and mtime, and the image config), so a warm run only imports them.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  existsSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackage } from './debian-packages.js';
import { busyboxRootfs, writeOciArchive, type ImageConfig } from './oci-image.js';
import { postgresBinDir } from './postgres.js';
import { redisServerBinary } from './redis.js';
import { makeTempDir } from './tempdir.js';

export const SERVICE_IMAGES = {
  redis: 'shardwarden.local/redis:1',
  postgres: 'shardwarden.local/postgres:1',
} as const;

/** The uid Postgres runs as in its image (it refuses root). */
export const POSTGRES_UID = 70;

/** Where image archives are cached, machine-wide (testenv/images/build.sh keeps its own there). */
export function imageCacheDir(): string {
  const root =
    process.env.SHARDWARDEN_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'shardwarden');
  return join(root, 'images');
}

function isElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    return readSync(fd, head, 0, 4, 0) === 4 && head.toString('latin1') === '\x7fELF';
  } finally {
    closeSync(fd);
  }
}

/** Regular files under `paths` (files or folders), recursively. */
function regularFiles(paths: string[]): string[] {
  return paths.flatMap((p) => {
    const s = statSync(p, { throwIfNoEntry: false });
    if (!s) return [];
    if (s.isDirectory()) return regularFiles(readdirSync(p).map((e) => join(p, e)));
    return s.isFile() ? [p] : [];
  });
}

/** The shared libraries (and the loader) the ELF files among `files` need, as absolute paths. */
function sharedLibraries(files: string[]): string[] {
  const libs = new Set<string>();
  for (const f of files.filter(isElf)) {
    const out = spawnSync('ldd', [f], { encoding: 'utf8' }).stdout ?? '';
    for (const line of out.split('\n')) {
      if (line.includes('not found')) throw new Error(`${f}: ${line.trim()}`);
      const path = /=> (\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+) \(/.exec(line)?.[1];
      if (path) libs.add(path);
    }
  }
  return [...libs];
}

/** Copies absolute `paths` to the same paths under `rootfs` (with tar, which makes the parents). */
function copyInto(rootfs: string, paths: string[], dereference: boolean, exclude: string[] = []): void {
  if (paths.length === 0) return;
  const rel = paths.map((p) => p.replace(/^\//, ''));
  const flags = [...(dereference ? ['-h'] : []), ...exclude.map((e) => `--exclude=*${e}*`)];
  execFileSync('sh', [
    '-c',
    `tar -C / ${flags.map((f) => `'${f}'`).join(' ')} -cf - "$@" | tar -C '${rootfs}' -xf -`,
    '-',
    ...rel,
  ]);
}

interface ServiceImageRecipe {
  config: ImageConfig;
  /** Host files and folders copied to the same paths in the image (folders keep their symlinks). */
  paths: string[];
  /** Path fragments left out of the folders (and their libraries). */
  exclude?: string[];
  /** Extra /etc/passwd and /etc/group lines. */
  passwd?: string;
  group?: string;
}

/** Bumped when how an image is assembled changes, so cached archives are not reused. */
const RECIPE_FORMAT = 4;

/** An archive nobody used for this long is removed (as testenv/images/build.sh does its own). */
const UNUSED_ARCHIVE_MS = 3 * 60 * 60_000;

/** What decides the image's bytes: the recipe and every input file's path, size and mtime. */
function recipeKey(recipe: ServiceImageRecipe, files: string[]): string {
  const hash = createHash('sha256').update(`${RECIPE_FORMAT}\n${JSON.stringify(recipe)}`);
  for (const f of [...files].sort()) {
    const s = statSync(f);
    hash.update(`${f}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** Removes `name`'s other archives (`<name>-<16 hex>.tar`, and `.<pid>.partial` ones a killed run left) that no run used (built or found) for UNUSED_ARCHIVE_MS. */
export function pruneUnusedArchives(name: string, keep: string): void {
  const dir = imageCacheDir();
  const stale = Date.now() - UNUSED_ARCHIVE_MS;
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, f.name);
    // `.<pid>.partial`: a run killed while writing its archive left it.
    if (
      !f.isFile() ||
      !/^.+-[0-9a-f]{16}\.tar(\.\d+\.partial)?$/.test(f.name) ||
      !f.name.startsWith(`${name}-`)
    )
      continue;
    if (path !== keep && (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? Infinity) < stale)
      rmSync(path, { force: true });
  }
}

/** Builds (or finds in the cache) the image archive of `recipe`; returns its path. */
function serviceImageArchive(recipe: ServiceImageRecipe): string {
  const busybox = ensureDebianPackage('/bin/busybox', 'busybox-static');
  const name = recipe.config.name.replace(/^.*\//, '').replace(':', '-');
  const exclude = recipe.exclude ?? [];
  const inputs = regularFiles(recipe.paths).filter((f) => !exclude.some((e) => f.includes(e)));
  // In the key too: an upgraded library (libssl, libpq) changes the image, not the binaries.
  const libs = sharedLibraries(inputs);
  const archive = join(imageCacheDir(), `${name}-${recipeKey(recipe, [busybox, ...inputs, ...libs])}.tar`);
  pruneUnusedArchives(name, archive);
  if (existsSync(archive)) {
    const now = new Date();
    utimesSync(archive, now, now); // its last use, for the pruning
    return archive;
  }
  const work = makeTempDir(`image-${name}`);
  try {
    const rootfs = busyboxRootfs(busybox, join(work.path, 'rootfs'));
    // Each at its absolute path. Folders are copied as they are (their symlinks point inside
    // them); files and libraries dereferenced (Debian's redis-server is a symlink to
    // redis-check-rdb, and the host's /lib may be one into /usr).
    const folders = recipe.paths.filter((p) => statSync(p).isDirectory());
    const files = [...recipe.paths.filter((p) => !folders.includes(p)), ...libs];
    copyInto(rootfs, folders, false, exclude);
    copyInto(rootfs, files, true);
    if (recipe.passwd) appendFileSync(join(rootfs, 'etc', 'passwd'), `${recipe.passwd}\n`);
    if (recipe.group) appendFileSync(join(rootfs, 'etc', 'group'), `${recipe.group}\n`);
    // Written beside, then renamed: a concurrent run never imports half an archive.
    const partial = writeOciArchive(
      rootfs,
      [recipe.config],
      join(work.path, 'oci'),
      `${archive}.${process.pid}.partial`,
    );
    renameSync(partial, archive);
    return archive;
  } finally {
    work.remove();
  }
}

/** redis-server, no persistence, listening on every address of its pod. */
export function redisImageArchive(): string {
  const server = redisServerBinary();
  return serviceImageArchive({
    config: {
      name: SERVICE_IMAGES.redis,
      entrypoint: [server, '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no'],
      user: '65534:65534',
      workingDir: '/tmp',
    },
    paths: [server],
  });
}

/**
 * The readiness check of the Postgres image (its bin folder has pg_isready and libpq): true once
 * the server accepts connections, not while it is still starting up (a bare TCP check passes then).
 */
export function postgresReadyCommand(): string[] {
  return [join(postgresBinDir(), 'pg_isready'), '-q', '-h', '127.0.0.1', '-U', 'postgres'];
}

/**
 * Postgres: initdb into /var/lib/postgresql/data (an emptyDir) at start, trust auth from any
 * address (a test database inside the cluster), then the server on 5432.
 */
export function postgresImageArchive(): string {
  const bin = postgresBinDir();
  // Where this build keeps its modules and share files (Debian: /usr/lib/postgresql/N/lib and
  // /usr/share/postgresql/N; elsewhere under its prefix), as the server itself finds them.
  const pgConfig = join(bin, 'pg_config');
  if (!existsSync(pgConfig))
    throw new Error(
      `the Postgres image needs ${pgConfig} to find the server's lib and share folders (SHARDWARDEN_POSTGRES_BIN must be a full server installation's bin folder)`,
    );
  const folder = (flag: string) => execFileSync(pgConfig, [flag], { encoding: 'utf8' }).trim();
  const data = '/var/lib/postgresql/data/pgdata';
  const start = [
    'set -e',
    `${bin}/initdb -D ${data} -U postgres --auth=trust -E UTF8 --locale=C --no-sync >/dev/null`,
    `echo 'host all all 0.0.0.0/0 trust' >> ${data}/pg_hba.conf`,
    `exec ${bin}/postgres -D ${data} -k /tmp -c listen_addresses='*' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c jit=off`,
  ].join('\n');
  return serviceImageArchive({
    config: {
      name: SERVICE_IMAGES.postgres,
      entrypoint: ['/bin/sh', '-c', start],
      user: `${POSTGRES_UID}:${POSTGRES_UID}`,
      workingDir: '/tmp',
    },
    // Debian's server reads the system's time zones; a build of its own has them in its share.
    paths: [bin, folder('--pkglibdir'), folder('--sharedir'), '/usr/share/zoneinfo'].filter((p) =>
      existsSync(p),
    ),
    // The JIT (llvmjit.so and its bitcode) would bring LLVM, 150 MB; the server runs with jit=off.
    exclude: ['llvmjit', 'bitcode'],
    passwd: `postgres:x:${POSTGRES_UID}:${POSTGRES_UID}:postgres:/var/lib/postgresql:/bin/sh`,
    group: `postgres:x:${POSTGRES_UID}:`,
  });
}
