#!/usr/bin/env node
// Copies into a folder only the files the image's commands load: the compiled entry points and
// every module they import, traced statically from them (@vercel/nft). A production
// `npm ci --omit=dev` is 561 MB, because packages' optional peers (the Prisma CLI, TypeScript,
// React...) stay in the tree, and packages ship types, source maps, CommonJS and ESM twice and a
// Prisma query compiler per database; the commands load about 40 MB of it.
//
//   node dist/bin/runtime-files.js <out-dir>     run from the project root, after `tsc`
import { nodeFileTrace } from '@vercel/nft';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * What the image runs: the CLI, and the module the gateway's cluster processes start from
 * (a path handed to node:cluster, not an import).
 */
export const ENTRY_POINTS = ['dist/bin/shardwarden.js', 'dist/bot/gateway/cluster/gateway-cluster.js'];

interface LockPackage {
  dev?: boolean;
}

/** The package folder a node_modules file belongs to, as package-lock.json names it. */
export function packageOf(file: string): string | undefined {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(file);
  return m?.[1];
}

/**
 * Splits traced files into those a production install has and the packages it has not (only
 * devDependencies bring them in). The trace runs over the full install, so it also finds what a
 * dependency loads only if present (debug's `try { require('supports-color') }`).
 */
export function productionFiles(
  files: Iterable<string>,
  lock: Record<string, LockPackage>,
): { kept: string[]; devOnly: string[] } {
  const kept: string[] = [];
  const devOnly = new Set<string>();
  for (const file of files) {
    const pkg = packageOf(file);
    if (pkg && lock[pkg]?.dev) devOnly.add(pkg);
    else kept.push(file);
  }
  return { kept, devOnly: [...devOnly].sort() };
}

/** Where node finds package `name` from package folder `from` (both relative to root). */
function installedFrom(root: string, from: string, name: string): string | undefined {
  for (let dir: string | undefined = from; dir !== undefined; dir = packageOf(dir)) {
    const candidate = `${dir}/node_modules/${name}`;
    if (existsSync(join(root, candidate))) return candidate;
  }
  return existsSync(join(root, 'node_modules', name)) ? `node_modules/${name}` : undefined;
}

/**
 * The installed optional dependencies of traced packages, whole: native prebuilds that a loader
 * picks by platform at run time (msgpackr-extract's @msgpackr-extract/msgpackr-extract-linux-x64),
 * which no static trace can follow. Only the machine's platform's are installed.
 */
function optionalDependencyFiles(root: string, files: Iterable<string>): string[] {
  const packages = new Set([...files].map(packageOf).filter((p) => p !== undefined));
  const found: string[] = [];
  for (const pkg of packages) {
    const manifest = JSON.parse(readFileSync(join(root, pkg, 'package.json'), 'utf8')) as {
      optionalDependencies?: Record<string, string>;
    };
    for (const name of Object.keys(manifest.optionalDependencies ?? {})) {
      const dir = installedFrom(root, pkg, name);
      if (dir && !packages.has(dir))
        for (const f of readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' }))
          found.push(`${dir}/${f}`);
    }
  }
  return found;
}

export async function traceRuntimeFiles(root: string): Promise<string[]> {
  const { fileList } = await nodeFileTrace(
    ENTRY_POINTS.map((f) => join(root, f)),
    { base: root, processCwd: root },
  );
  // package.json says "type": "module" for dist/: without it node reads the CLI as CommonJS.
  return [...new Set([...fileList, ...optionalDependencyFiles(root, fileList), 'package.json'])].sort();
}

async function main(outDir: string | undefined): Promise<void> {
  if (!outDir) throw new Error('usage: runtime-files <out-dir>');
  const root = process.cwd();
  const files = await traceRuntimeFiles(root);
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockPackage>;
  };
  const { kept, devOnly } = productionFiles(files, lock.packages);
  if (devOnly.length > 0)
    console.log(`left out, not in a production install (loaded only if present): ${devOnly.join(', ')}`);
  let bytes = 0;
  for (const file of kept) {
    if (statSync(join(root, file)).isDirectory()) continue; // its files are listed themselves
    const target = resolve(outDir, file);
    mkdirSync(dirname(target), { recursive: true });
    // Symlinks (a package linked into node_modules) are copied as what they point to.
    cpSync(join(root, file), target, { dereference: true });
    bytes += statSync(target).size;
  }
  console.log(`runtime files: ${kept.length} files, ${(bytes / 1e6).toFixed(1)} MB in ${outDir}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv[2]).catch((err: unknown) => {
    console.error(`runtime-files: ${(err as Error).message}`);
    process.exit(1);
  });
}
