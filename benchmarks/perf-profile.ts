// Linux perf over one process for a phase of a benchmark, its samples grouped by the kind of work:
// what redis-profile.ts (redis-server) and node-profile.ts (the Ear, the default client) share.
// #16 asks that a target still missed be reported with the profile that shows why.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { within } from '../bot/timing/within.js';

export const run = promisify(execFile);

/** Samples per second: about 1 % of a core's time in the sampled process at full load. */
const FREQUENCY_HZ = 4_999;

/** One row of `perf report`: a share of the samples, the object and the symbol. */
export interface ProfileRow {
  percent: number;
  dso: string;
  symbol: string;
  /** perf's `[k]`: kernel code, whether or not its object could be named. */
  kernel: boolean;
}

export interface Profile {
  samples: number;
  /** Share of the samples per kind of work, largest first. */
  groups: { group: string; percent: number }[];
  /** The largest symbols (code without a name counted as one entry per group). */
  top: { symbol: string; group: string; percent: number }[];
}

/** One line of `perf report -F sample,dso,sym`: its sample count, the object, the symbol. */
const REPORT_LINE = /^\s*(\d+)\s+(.+?)\s+\[([.k])\]\s+(.+?)\s*$/;

/**
 * Rows of `perf report --stdio -F sample,dso,sym` (comments skipped), each with its share of all
 * the report's samples. Read from the counts: the percentages perf prints are rounded to 0.01,
 * which over a thousand small rows adds up to points. A JIT object ("[JIT] tid 12") and a
 * JavaScript symbol ("JS:*parse file:///…:3:9") hold spaces.
 */
function readReport(text: string): { samples: number; rows: ProfileRow[] } {
  const counted: { samples: number; dso: string; symbol: string; kernel: boolean }[] = [];
  for (const line of text.split('\n')) {
    const m = REPORT_LINE.exec(line);
    if (m) counted.push({ samples: Number(m[1]), dso: m[2]!, symbol: m[4]!, kernel: m[3] === 'k' });
  }
  const samples = counted.reduce((n, r) => n + r.samples, 0);
  return {
    samples,
    rows: counted.map(({ samples: n, ...row }) => ({ ...row, percent: (n * 100) / samples })),
  };
}

export const parseReport = (text: string): ProfileRow[] => readReport(text).rows;

/** The report's samples: the sum of its rows' counts. */
export const sampleCount = (text: string): number => readReport(text).samples;

/** How a profile names a row: its group, and the symbol it is listed under among the largest. */
export type Classify = (row: ProfileRow) => { group: string; symbol?: string };

/** Sums the rows per group and per symbol (as `classify` names them), largest first. */
export function groupRows(rows: ProfileRow[], classify: Classify, topCount = 15): Omit<Profile, 'samples'> {
  const totals = new Map<string, number>();
  const bySymbol = new Map<string, { group: string; percent: number }>();
  for (const row of rows) {
    const { group, symbol = row.symbol } = classify(row);
    totals.set(group, (totals.get(group) ?? 0) + row.percent);
    const entry = bySymbol.get(symbol) ?? { group, percent: 0 };
    entry.percent += row.percent;
    bySymbol.set(symbol, entry);
  }
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    groups: [...totals]
      .map(([group, percent]) => ({ group, percent: round(percent) }))
      .sort((a, b) => b.percent - a.percent),
    top: [...bySymbol]
      .map(([symbol, e]) => ({ symbol, group: e.group, percent: round(e.percent) }))
      .sort((a, b) => b.percent - a.percent)
      .slice(0, topCount),
  };
}

/** A recording's report, read once: its sample count and its rows. */
async function perfReport(data: string): Promise<{ samples: number; rows: ProfileRow[] }> {
  const report = await run('perf', ['report', '-i', data, '--stdio', '-F', 'sample,dso,sym'], {
    maxBuffer: 64 << 20,
  });
  return readReport(report.stdout);
}

export type Unavailable = { unavailable: string };

export interface ProfileRecording {
  /** Stops sampling and reads the profile; `unavailable` says why when perf could not run. */
  stop(): Promise<Profile | Unavailable>;
}

/**
 * Starts sampling process `pid` into `dir`; `group` sorts the report's rows into the profile.
 * Where perf is missing or refused, stop() says so instead of a profile: a benchmark's figures do
 * not depend on it.
 */
export async function recordPerf(
  pid: number,
  dir: string,
  name: string,
  group: (rows: ProfileRow[]) => Promise<Omit<Profile, 'samples'>>,
): Promise<ProfileRecording> {
  const data = join(dir, `${name}.perf`);
  let perf: ChildProcess | undefined;
  let failed: string | undefined;
  try {
    perf = spawn('perf', ['record', '-F', String(FREQUENCY_HZ), '-p', String(pid), '-o', data], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    perf.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    perf.once('error', (err) => (failed = err.message));
    perf.once('exit', (code) => {
      if (code !== 0 && code !== null)
        failed ??= `perf record exited ${code}: ${stderr.trim().slice(0, 300)}`;
    });
    // perf attaches once it says nothing for a moment; a refusal exits at once.
    await new Promise((r) => setTimeout(r, 300));
  } catch (err) {
    failed = (err as Error).message;
  }
  return {
    async stop() {
      if (failed || !perf) return { unavailable: failed ?? 'perf did not start' };
      if (perf.exitCode === null && perf.signalCode === null) {
        const exited = once(perf, 'exit');
        perf.kill('SIGINT');
        // perf writes its file on SIGINT; one that does not end is killed, and says so.
        const ended = await within(exited, 30_000, () => undefined);
        if (ended === undefined) {
          perf.kill('SIGKILL');
          return { unavailable: 'perf record did not stop within 30 s of SIGINT' };
        }
      }
      if (failed) return { unavailable: failed };
      try {
        const { samples, rows } = await perfReport(data);
        return { samples, ...(await group(rows)) };
      } catch (err) {
        return { unavailable: `reading the profile failed: ${(err as Error).message.slice(0, 300)}` };
      }
    },
  };
}
