// Redis, Postgres, Prometheus and Chromium come from Debian's packages. When one is missing the test
// environment installs it (as `make setup` would) or says exactly what to install.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Packages whose install starts a system daemon we never use (tests run their own on free ports),
 * or whose recommends would: installed without recommends (prometheus would bring node-exporter,
 * chromium upower, udev and notification-daemon) and their service stopped and disabled right
 * after. The Makefile's system-packages does the same.
 */
const DAEMON_PACKAGES = new Set(['prometheus', 'chromium']);
// Beside this file in the source tree; from dist/testenv, the source tree's copy.
const here = dirname(fileURLToPath(import.meta.url));
const SERVICE_OFF = [
  join(here, 'debian-service-off.sh'),
  join(here, '..', '..', 'testenv', 'debian-service-off.sh'),
].find((p) => existsSync(p));

function onPath(command: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Returns the path of `file` (a command name or an absolute path), installing `pkg` if needed. */
export function ensureDebianPackage(file: string, pkg: string): string {
  const find = () => (file.startsWith('/') ? (existsSync(file) ? file : undefined) : onPath(file));
  const found = find();
  if (found) return found;
  const apt = onPath('apt-get');
  const isRoot = process.getuid?.() === 0;
  if (!apt || !isRoot) {
    throw new Error(
      `${file} is missing: install the Debian package '${pkg}' (apt-get install ${pkg}), ` +
        `or run 'make setup' as root on a Debian-like machine`,
    );
  }
  const daemon = DAEMON_PACKAGES.has(pkg);
  execFileSync(
    'sh',
    [
      '-c',
      `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${daemon ? '--no-install-recommends ' : ''}${pkg}` +
        (daemon && SERVICE_OFF ? ` && sh '${SERVICE_OFF}' ${pkg}` : ''),
    ],
    { stdio: 'inherit' },
  );
  const installed = find();
  if (!installed) throw new Error(`installed '${pkg}' but ${file} is still missing`);
  return installed;
}

/** For env vars that point at a binary: the path, or an error that names the variable. */
export function requireExecutable(envVar: string, path: string): string {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    throw new Error(`${envVar} points at ${path}, which is not an executable file`);
  }
}
