// Where a redis-server spends its CPU over a phase of a benchmark: Linux perf samples the
// process (its pid from INFO server; perf-profile.ts) and the samples are grouped by what the
// code does.
//
// Debian's redis-server is stripped, but Redis links with -rdynamic, so its own functions and the
// Lua library's API (lua_*, luaL_*, luaopen_*) are named; the interpreter's internal functions
// (the VM, its tables and strings) and the static code of its C modules (cjson, cmsgpack) are
// not. Their samples show as bare addresses, which lie between the Lua API's symbols in the
// binary: an address in that span is counted as Lua, interpreter and modules together.
import type { Redis } from 'ioredis';
import {
  groupRows,
  recordPerf,
  run,
  type Profile,
  type ProfileRecording,
  type ProfileRow,
} from './perf-profile.js';

/** The kinds of work, in the order a row is tested against them; the first that matches wins. */
const GROUPS: { group: string; matches: (row: ProfileRow, inLua: boolean) => boolean }[] = [
  { group: 'kernel: sockets, syscalls, scheduling', matches: (r) => r.kernel },
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
): Omit<Profile, 'samples'> {
  return groupRows(
    rows,
    (row) => {
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
      // Bare addresses are counted as one entry per group: each alone is a sliver of one function.
      return { group, ...(address !== undefined && { symbol: `(unnamed code: ${group})` }) };
    },
    topCount,
  );
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

/** Starts sampling the redis-server behind `redis` into `dir` (perf-profile.ts's recordPerf). */
export async function profileRedis(redis: Redis, dir: string, name: string): Promise<ProfileRecording> {
  const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
  return recordPerf(pid, dir, name, async (rows) => {
    const binary = (await run('readlink', ['-f', `/proc/${pid}/exe`])).stdout.trim();
    return groupProfile(rows, binary.split('/').pop() ?? '', await luaSpanOf(binary));
  });
}
