// Headless Chromium from Debian's `chromium` package, to check that a page the project writes
// (the demo's plots) loads and draws in a real browser.
import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { ensureDebianPackage, requireExecutable } from './debian-packages.js';
import { makeTempDir } from './tempdir.js';

/** chromium, from SHARDWARDEN_CHROMIUM or Debian's chromium package (installed when missing and root). */
export function chromiumBinary(): string {
  return process.env.SHARDWARDEN_CHROMIUM
    ? requireExecutable('SHARDWARDEN_CHROMIUM', process.env.SHARDWARDEN_CHROMIUM)
    : ensureDebianPackage('chromium', 'chromium');
}

/** Why Chromium cannot run here (the install error), or undefined when it can. */
export function chromiumUnavailable(): string | undefined {
  try {
    chromiumBinary();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function runChromium(args: string[]): Promise<{ stdout: string; stderr: string }> {
  // A profile of its own: never a shared one, and nothing left behind.
  const profile = makeTempDir('chromium');
  return new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
    execFile(
      chromiumBinary(),
      ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile.path}`, ...args],
      // A hung browser is killed (SIGKILL) rather than left to outlive the test.
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 90_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) =>
        err ? reject(new Error(`chromium failed: ${err.message}\n${stderr}`)) : resolve({ stdout, stderr }),
    ),
  ).finally(() => profile.remove());
}

export interface LoadedPage {
  /** The DOM after load, serialized (--dump-dom). */
  dom: string;
  /** The page's console messages and uncaught errors, as Chromium logs them. */
  console: string[];
}

/**
 * Loads a local HTML file in headless Chromium and returns its DOM after load and its console.
 * Chromium's own complaints about the machine (no D-Bus, no GPU) are in its log too; only lines
 * from the page's console are returned.
 */
export async function loadInChromium(file: string): Promise<LoadedPage> {
  const { stdout, stderr } = await runChromium([
    '--enable-logging=stderr',
    '--v=0',
    '--dump-dom',
    pathToFileURL(file).href,
  ]);
  return { dom: stdout, console: stderr.split('\n').filter((l) => /:CONSOLE[:(]/.test(l)) };
}

/** Writes a PNG screenshot of a local HTML file, `width` × `height` CSS pixels, to `png`. */
export async function screenshotInChromium(
  file: string,
  png: string,
  size: { width: number; height: number },
): Promise<void> {
  await runChromium([
    '--hide-scrollbars',
    `--window-size=${size.width},${size.height}`,
    `--screenshot=${png}`,
    pathToFileURL(file).href,
  ]);
}
