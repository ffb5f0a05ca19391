// The project image, built offline from the real Dockerfile (testenv/images/build.sh), and
// commands run in containers of it with buildah: what a test needs to check the image itself
// or to load it onto the real node.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Builds (or, with warm layers, re-tags) the image; slow only when its inputs changed. */
export function buildProjectImage(): ProjectImage {
  const out = execFileSync('bash', [BUILD_SCRIPT], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as ProjectImage;
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
  const b = (a: string[]) => execFileSync('buildah', [...built.buildahArgs, ...a], { encoding: 'utf8' });
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
