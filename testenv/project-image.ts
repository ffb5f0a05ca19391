// The project image, built offline from the real Dockerfile (testenv/images/build.sh), and
// commands run in containers of it with buildah: what a test needs to check the image itself
// or to load it onto the real node.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageCacheDir, pruneUnusedArchives } from './service-images.js';

// Beside this file in the source tree; from dist/testenv, back in the source tree.
const here = dirname(fileURLToPath(import.meta.url));
const BUILD_SCRIPT =
  [join(here, 'images', 'build.sh'), join(here, '..', '..', 'testenv', 'images', 'build.sh')].find((p) =>
    existsSync(p),
  ) ?? join(here, 'images', 'build.sh');

/** The JSON line build.sh prints (and writes beside the archive). */
export interface ProjectImage {
  image: string;
  /**
   * The built image's id: the tag is shared by every checkout's builds in the machine-wide
   * buildah storage, so anything run from this build names it by id.
   */
  imageId: string;
  /** OCI archive for `node.importImage()`. */
  archive: string;
  /** Uncompressed size, the Node base included. */
  sizeBytes: number;
  baseSizeBytes: number;
  buildSeconds: number;
  /** buildah's storage flags for this image cache. */
  buildahArgs: string[];
}

/** Why the image cannot be built here, or undefined. */
export function projectImageUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'building and running the image needs root (buildah, mmdebstrap)';
  return undefined;
}

/**
 * Builds (or, with warm layers, re-tags) the image; slow only when its inputs changed. The
 * build's log goes to stderr, or with `quiet` only into the error when it fails (the demo's
 * narration has no use for buildah's steps).
 */
export function buildProjectImage(options: { quiet?: boolean } = {}): ProjectImage {
  let out: string;
  try {
    out = execFileSync('bash', [BUILD_SCRIPT], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', options.quiet ? 'pipe' : 'inherit'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const log = String((err as { stderr?: string }).stderr ?? '');
    if (!options.quiet || !log) throw err;
    throw new Error(`${BUILD_SCRIPT} failed:\n${log.trimEnd().split('\n').slice(-40).join('\n')}`, {
      cause: err,
    });
  }
  return JSON.parse(out.trim().split('\n').at(-1)!) as ProjectImage;
}

/** buildah with the project image's storage; returns stdout. */
function buildah(built: ProjectImage): (args: string[]) => string {
  return (args) => execFileSync('buildah', [...built.buildahArgs, ...args], { encoding: 'utf8' });
}

/** buildah for a cleanup that must not hide what happened before it. */
function tryBuildah(b: (args: string[]) => string, args: string[]): void {
  try {
    b(args);
  } catch {
    // Left in buildah's storage: only space.
  }
}

/** What an image built FROM the project image adds: files and ENV, as a bot's Dockerfile would. */
export interface ImageOnProject {
  /** The new image's repository; its tag is the key of its inputs. */
  repository: string;
  /** Host file → absolute path in the image. */
  files: Record<string, string>;
  env: Record<string, string>;
}

export interface BuiltImage {
  image: string;
  /** OCI archive for `node.importImage()`. */
  archive: string;
}

/** The key of an image on `base`: the base's id, the files' paths and bytes, the ENV. */
function imageOnProjectKey(base: ProjectImage, spec: ImageOnProject): string {
  const hash = createHash('sha256').update(
    `${base.imageId}\n${spec.repository}\n${JSON.stringify(spec.env)}`,
  );
  for (const [from, to] of Object.entries(spec.files).sort(([, a], [, b]) => a.localeCompare(b)))
    hash.update(`\n${to}\n`).update(readFileSync(from));
  return hash.digest('hex').slice(0, 16);
}

/**
 * Builds an image FROM the project image with `spec`'s files and ENV (buildah, offline), as a
 * user of Shardwarden builds their bot image. Cached beside the project image's archives, keyed
 * by its inputs: a warm run finds the archive and builds nothing.
 */
export function buildImageOnProject(base: ProjectImage, spec: ImageOnProject): BuiltImage {
  const key = imageOnProjectKey(base, spec);
  const name = spec.repository.replace(/^.*\//, '');
  const image = `${spec.repository}:${key}`;
  const archive = join(imageCacheDir(), `${name}-${key}.tar`);
  pruneUnusedArchives(name, archive);
  if (existsSync(archive)) {
    const now = new Date();
    utimesSync(archive, now, now); // its last use, for the pruning
    return { image, archive };
  }
  const b = buildah(base);
  const container = b(['from', '--pull-never', base.imageId]).trim();
  // Written beside, then renamed: a concurrent run never imports half an archive.
  const partial = `${archive}.${process.pid}.partial`;
  try {
    for (const [from, to] of Object.entries(spec.files)) b(['copy', container, from, to]);
    b(['config', ...Object.entries(spec.env).flatMap(([k, v]) => ['--env', `${k}=${v}`]), container]);
    const imageId = b(['commit', '-q', container, image]).trim();
    b(['push', '-q', imageId, `oci-archive:${partial}:${image}`]);
    renameSync(partial, archive);
    // The archive is the cache: kept in buildah's storage, every key (each new project image,
    // each ENV) would pile up there. By id, so a concurrent run's image of the same tag stays.
    tryBuildah(b, ['rmi', imageId]);
  } finally {
    rmSync(partial, { force: true });
    // Never in place of the build's own error.
    tryBuildah(b, ['rm', container]);
  }
  return { image, archive };
}

export interface ImageRun {
  status: number | null;
  /** stdout and stderr together. */
  out: string;
}

/**
 * Runs the image's entrypoint (or `command` instead) with `args`, as the image's user, in a fresh
 * container removed afterwards.
 */
export function runInImage(
  built: ProjectImage,
  args: string[],
  options: { env?: Record<string, string>; command?: string[] } = {},
): ImageRun {
  const b = buildah(built);
  const config = (
    JSON.parse(b(['inspect', '--type', 'image', built.imageId])) as {
      OCIv1: { config: { Entrypoint?: string[] } };
    }
  ).OCIv1.config;
  const container = b(['from', '--pull-never', built.imageId]).trim();
  try {
    const env = Object.entries(options.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    const r = spawnSync(
      'buildah',
      [
        ...built.buildahArgs,
        'run',
        '--network',
        'host',
        ...env,
        container,
        '--',
        ...(options.command ?? config.Entrypoint ?? []),
        ...args,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    b(['rm', container]);
  }
}
