// The demo's scenario, short enough for a test: 1500 guilds on 4 shards, 3 s of steady traffic,
// a burst that still scales the workers, 5 interactions, then the reshard to 6 shards. Shared by
// the demo tests (kwok and the real node) and the live-dashboard test, which must see the same
// system. Each chooses the node (`auto`: no `--node`, the default).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const SHORT_DEMO_ARGS = [
  '--guilds',
  '1500',
  '--duration',
  '3',
  '--burst',
  '1500',
  '--interactions',
  '5',
  '--scale-down-window',
  '3',
];

const MAIN = fileURLToPath(new URL('../../dist/demo/main.js', import.meta.url));

/** Pids of processes whose environment carries this run's marker. */
function processesOfRun(runId: string): number[] {
  const marker = `SHARDWARDEN_DEMO_RUN=${runId}`;
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/**
 * Runs the demo program (dist/demo/main.js) with `args` to its end, as a user would; every
 * process it starts inherits its run marker (see processesOfRun).
 */
async function runDemo(args: string[]): Promise<{ code: number | null; out: string; runId: string }> {
  const runId = randomBytes(6).toString('hex');
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, SHARDWARDEN_DEMO_RUN: runId },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, out, runId };
}

/** The lines a short run must print, and the plot page it names. */
function checkDemoOutput(out: string, page: string | undefined): void {
  for (const line of [
    /identify bucket 0: shard 0 \+0\.\ds, shard 2 \+\d/,
    /all 4 shards READY/,
    /answered 5\/5; round trip p50 \d+ ms/,
    /workers 1 → [2-4] \(backlog \d+/,
    /workers \d → 1 /,
    /reshard complete: 4 → 6 shards, gateway generation 2/,
    /longest gap in forwarding: \d+ ms/,
    // kubectl get dbot: 6 shards on 2 pods, 1 worker. READY is the status' count, which can lag
    // the reshard by a status write on a busy machine (a CI run with a CPU hog printed 0); the
    // shards READY row from Prometheus below is the check that they are.
    /demo-bot\s+6\s+2\s+[0-2]\s+1\s/,
    /operator {2}http:\/\/127\.0\.0\.1:\d+\/metrics/,
    // The headline table from the demo's Prometheus: 6 shards at the end, the workers back at 1.
    /Prometheus http:\/\/127\.0\.0\.1:\d+ scraped/,
    /shards READY\s+6\s+6\s/,
    /events received\/s\s+\d[\d.]*\/s/,
    /backlog \(jobs\)\s+\d+\s/,
    /worker replicas\s+[2-4]\s+1\s/,
    /interaction p99\s+\d[\d.]* ms/,
    /DEMO OK: (\d+) events sent, \1 processed, 0 lost, 0 duplicated; 5 interactions answered/,
    /plots \(backlog and workers, shards READY through the reshard\): \/\S+\/shardwarden-demo-\w+\.html$/m,
    /stopped; nothing is left running/,
  ])
    expect(out).toMatch(line);
  expect(out).not.toMatch(/WARNING: not everything stopped/);
  // stderr is in `out` too: no timer set to a negative delay (the event stream's pacing).
  expect(out).not.toMatch(/TimeoutNegativeWarning/);
  // Secrets never in the narration: no URL with a password (Redis', the app role's).
  expect(out).not.toMatch(/:\/\/[^\s/]*:[^\s/@]+@/);
  // Every series of both plots has points from Prometheus (how the page draws in a browser:
  // report-chromium.test.ts).
  expect(page).toBeDefined();
  const html = readFileSync(page!, 'utf8');
  expect(html.match(/<svg class="plot"/g)).toHaveLength(2);
  for (const series of [
    'backlog \\(jobs\\)',
    'worker replicas',
    'generation 1',
    'generation 2',
    'distinct shards READY',
  ])
    expect(html).toMatch(new RegExp(`data-series="${series}" data-points="[1-9]\\d*"`));
}

/**
 * The short scenario on `node`, run to its end and checked (checkDemoOutput); then nothing it
 * started may still run. Returns its output for checks of that node's own lines.
 */
export async function runShortDemo(node: 'kwok' | 'real' | 'auto'): Promise<string> {
  const { code, out, runId } = await runDemo([
    ...SHORT_DEMO_ARGS,
    ...(node === 'auto' ? [] : ['--node', node]),
  ]);
  // The plot page outlives the log folder: removed here whatever the checks find.
  const page = /plots \(.*\): (\S+\.html)$/m.exec(out)?.[1];
  try {
    if (code !== 0) throw new Error(`demo exited with ${code}:\n${out}`);
    checkDemoOutput(out, page);
  } finally {
    if (page) rmSync(page, { force: true });
  }
  // The figures #8's full-process run asks for (counts through the BlueGreen reshard, the gap),
  // and the headline table from Prometheus.
  console.log(
    out
      .split('\n')
      .filter((l) =>
        /DEMO OK|plots \(|longest gap|reshard complete|Prometheus http|series +peak|shards READY|events received|backlog \(jobs\)|worker replicas|interaction p99/.test(
          l,
        ),
      )
      .join('\n'),
  );
  expect(processesOfRun(runId)).toEqual([]);
  return out;
}
