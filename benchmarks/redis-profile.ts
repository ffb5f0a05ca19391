// Where a redis-server spends its CPU over a phase of a benchmark: Linux perf samples the
// process (its pid from INFO server) and the samples are grouped by what the code does. #16 asks
// that a target still missed be reported with the profile that shows why.
//
// Debian's redis-server is stripped, but Redis links with -rdynamic, so its own functions and the
// Lua library's API (lua_*, luaL_*, luaopen_*) are named; the interpreter's internal functions
// (the VM, its tables and strings) and the static code of its C modules (cjson, cmsgpack) are
// not. Their samples show as bare addresses, which lie between the Lua API's symbols in the
// binary: an address in that span is counted as Lua, interpreter and modules together.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { within } from '../bot/timing/within.js';

const run = promisify(execFile);

/** Samples per second: about 1 % of a core's time in the sampled process at full load. */
const FREQUENCY_HZ = 4_999;

/** One row of `perf report`: a share of the samples, the object and the symbol. */
export interface ProfileRow {
  percent: number;
  dso: string;
  symbol: string;
}

export interface RedisProfile {
  samples: number;
  /** Share of the samples per kind of work, largest first. */
  groups: { group: string; percent: number }[];
  /** The largest symbols (bare addresses named by the group they were counted in). */
  top: { symbol: string; group: string; percent: number }[];
}

/** The kinds of work, in the order a row is tested against them; the first that matches wins. */
const GROUPS: { group: string; matches: (row: ProfileRow, inLua: boolean) => boolean }[] = [
  { group: 'kernel: sockets, syscalls, scheduling', matches: (r) => r.dso === '[kernel.kallsyms]' },
  {
    // BullMQ's scripts read and write job data with the cjson and cmsgpack modules.
    group: 'Lua: interpreter, cjson, cmsgpack',
    matches: (r, inLua) =>
      inLua || /^(lua_|luaL_|luaopen_|lua[A-Z]_|json_|strbuf_|fpconv_|mp_)/.test(r.symbol),
  },
  {
    group: 'Redis <-> Lua: script calls, arguments and replies',
    matches: (r) => /^(lua[A-Z]|script|eval|fcall|redisProtocolToLuaType|ldb)/.test(r.symbol),
  },
  {
    group: 'memory allocation',
    matches: (r) =>
      /jemalloc/.test(r.dso) ||
      /^((ztry|z)?(malloc|calloc|realloc|free)(_usable(_size)?)?|malloc_usable_size)$/.test(r.symbol),
  },
  {
    group: 'keys, hashes, lists, sorted sets',
    matches: (r) =>
      /^(dict|lookupKey|siphash|lp[A-Z]|hashType|zsl|zset|zzl|quicklist|listType|stream|dbAdd|dbDelete|setKey|createObject|createEmbeddedStringObject|createStringObject|decrRefCount|incrRefCount|getExpire|setExpire|keyIsExpired|expireIfNeeded|intset|tryObjectEncoding)/.test(
        r.symbol,
      ),
  },
  {
    group: 'command dispatch, parsing and replies',
    matches: (r) =>
      /^(processInputBuffer|processMultibulkBuffer|processCommand|call$|lookupCommand|addReply|_addReply|readQueryFromClient|writeToClient|_writeToClient|handleClientsWithPendingWrites|prepareClientToWrite|resetClient|freeClientArgv|propagate|alsoPropagate|feedReplication|replicationFeed|afterCommand|commandProcessed|updateStatsOnCommand|hdr_|connSocket|aeProcessEvents|aeApiPoll|beforeSleep|clientsCron|serverCron)/.test(
        r.symbol,
      ),
  },
  // sds is Redis's string type: its copies sit beside libc's memmove in moving bytes around.
  {
    group: 'strings and copies: sds, libc',
    matches: (r) => /^libc/.test(r.dso) || /^(_?sds|ll2string|string2)/.test(r.symbol),
  },
];
const OTHER = 'other';
/** Redis's static functions have no symbol either: named for what they are, not guessed at. */
const UNNAMED_REDIS = 'Redis static functions (no symbol)';

/** Rows of `perf report --stdio --sort dso,symbol --percentage relative` (comments skipped). */
export function parseReport(text: string): ProfileRow[] {
  const rows: ProfileRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(\S+)/.exec(line);
    if (m) rows.push({ percent: Number(m[1]), dso: m[2]!, symbol: m[3]! });
  }
  return rows;
}

/** The report's sample count: perf writes large ones as `12K` or `3M`. */
export function sampleCount(report: string): number {
  const m = /^# Samples: ([\d.]+)([KM]?)/m.exec(report);
  return m ? Math.round(Number(m[1]) * (m[2] === 'M' ? 1e6 : m[2] === 'K' ? 1e3 : 1)) : 0;
}

/**
 * Groups the rows. `luaSpan` is the address range of the Lua library in the redis binary
 * (`binary` is its object name in the report): a bare address of that object inside it is the
 * interpreter's unnamed code.
 */
export function groupProfile(
  rows: ProfileRow[],
  binary: string,
  luaSpan: { from: number; to: number } | undefined,
  topCount = 15,
): Omit<RedisProfile, 'samples'> {
  const totals = new Map<string, number>();
  const bySymbol = new Map<string, { group: string; percent: number }>();
  for (const row of rows) {
    const address = /^0x[0-9a-f]+$/.test(row.symbol) ? Number.parseInt(row.symbol, 16) : undefined;
    const inLua =
      row.dso === binary &&
      address !== undefined &&
      !!luaSpan &&
      address >= luaSpan.from &&
      address < luaSpan.to;
    const group =
      GROUPS.find((g) => g.matches(row, inLua))?.group ??
      (row.dso === binary && address !== undefined ? UNNAMED_REDIS : OTHER);
    totals.set(group, (totals.get(group) ?? 0) + row.percent);
    // Bare addresses are counted as one entry per group: each alone is a sliver of one function.
    const symbol = address !== undefined ? `(unnamed code: ${group})` : row.symbol;
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

/** The span from the first to the last exported Lua library symbol of `binary`'s code. */
async function luaSpanOf(binary: string): Promise<{ from: number; to: number } | undefined> {
  const { stdout } = await run('nm', ['-D', '--defined-only', binary], { maxBuffer: 16 << 20 });
  const addresses = stdout
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length === 3 && /^[tT]$/.test(f[1]!) && /^(lua_|luaL_|luaopen_)/.test(f[2]!))
    .map((f) => Number.parseInt(f[0]!, 16));
  return addresses.length ? { from: Math.min(...addresses), to: Math.max(...addresses) } : undefined;
}

export interface ProfileRecording {
  /** Stops sampling and reads the profile; undefined with `why` when perf could not run. */
  stop(): Promise<RedisProfile | { unavailable: string }>;
}

/**
 * Starts sampling the redis-server behind `redis` into `dir`. Where perf is missing or refused,
 * the recording's stop() says so instead of a profile: a benchmark's figures do not depend on it.
 */
export async function profileRedis(redis: Redis, dir: string, name: string): Promise<ProfileRecording> {
  const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
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
  const read = async (): Promise<RedisProfile> => {
    const binary = (await run('readlink', ['-f', `/proc/${pid}/exe`])).stdout.trim();
    const report = await run(
      'perf',
      ['report', '-i', data, '--stdio', '--sort', 'dso,symbol', '--percentage', 'relative'],
      { maxBuffer: 64 << 20 },
    );
    const shortName = binary.split('/').pop() ?? '';
    return {
      samples: sampleCount(report.stdout),
      ...groupProfile(parseReport(report.stdout), shortName, await luaSpanOf(binary)),
    };
  };
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
        return await read();
      } catch (err) {
        return { unavailable: `reading the profile failed: ${(err as Error).message.slice(0, 300)}` };
      }
    },
  };
}
