// The grouping of redis-server's perf samples (benchmarks/redis-profile.ts): rows parsed from
// perf's report and counted by the kind of work, unnamed Lua code by its address.
import { parseReport, sampleCount } from '../../benchmarks/perf-profile.js';
import { groupProfile } from '../../benchmarks/redis-profile.js';

const REPORT = `# To display the perf.data header info, please use --header/--header-only options.
#
# Total Lost Samples: 0
#
# Samples: 56K of event 'cpu-clock:ppp'
# Event count (approx.): 11301259800
#
#      Samples  Shared Object      Symbol
# ............  .................  ..............................................
#
     2000  [kernel.kallsyms]  [k] pvm_irq_enable
     1500  redis-check-rdb    [.] 0x000000000015e6d0
       500  redis-check-rdb    [.] 0x000000000015e6ec
     1000  redis-check-rdb    [.] lpFind
       800  redis-check-rdb    [.] luaH_getstr
       700  redis-check-rdb    [.] luaRedisGenericCommand
       600  libjemalloc.so.2   [.] malloc
       500  redis-check-rdb    [.] 0x0000000000064e55
       400  redis-check-rdb    [.] mp_encode_lua_type
       400  redis-check-rdb    [.] processMultibulkBuffer
       400  libc.so.6          [.] __memcmp_evex_movbe
       400  redis-check-rdb    [.] dictFind
       800  [vdso]             [.] 0x0000000000000a1b
`;

test('perf report rows are read with their share of the counted samples', () => {
  const rows = parseReport(REPORT);
  expect(rows).toHaveLength(13);
  expect(rows[1]).toEqual({
    percent: 15,
    dso: 'redis-check-rdb',
    symbol: '0x000000000015e6d0',
    kernel: false,
  });
  // The rows' counts, not the header's rounded "56K" (nor its "Total Lost Samples").
  expect(sampleCount(REPORT)).toBe(10_000);
});

test('samples are grouped by the kind of work; unnamed code in the Lua span counts as Lua', () => {
  const { groups, top } = groupProfile(parseReport(REPORT), 'redis-check-rdb', {
    from: 0x150000,
    to: 0x170000,
  });
  expect(Object.fromEntries(groups.map((g) => [g.group, g.percent]))).toEqual({
    'kernel: sockets, syscalls, scheduling': 20,
    'Lua: interpreter, cjson, cmsgpack': 32,
    'keys, hashes, lists, sorted sets': 14,
    'Redis <-> Lua: script calls, arguments and replies': 7,
    'memory allocation': 6,
    'Redis static functions (no symbol)': 5,
    'command dispatch, parsing and replies': 4,
    'strings and copies: sds, libc': 4,
    other: 8,
  });
  expect(groups[0]).toEqual({ group: 'Lua: interpreter, cjson, cmsgpack', percent: 32 });
  expect(top[0]).toEqual({
    symbol: 'pvm_irq_enable',
    group: 'kernel: sockets, syscalls, scheduling',
    percent: 20,
  });
  // The bare addresses of a group are one entry, named for it.
  expect(top[1]).toEqual({
    symbol: '(unnamed code: Lua: interpreter, cjson, cmsgpack)',
    group: 'Lua: interpreter, cjson, cmsgpack',
    percent: 20,
  });
});

test('names are matched whole where a prefix would take other work', () => {
  const rows = [
    'freeClient',
    'freeClientArgv',
    'zfree',
    'malloc_usable_size',
    'listAddNodeTail',
    'luaRedisPCall',
  ].map((symbol) => ({ percent: 1, dso: 'redis-check-rdb', symbol, kernel: false }));
  const { top } = groupProfile(rows, 'redis-check-rdb', undefined);
  expect(Object.fromEntries(top.map((t) => [t.symbol, t.group]))).toEqual({
    freeClient: 'other',
    freeClientArgv: 'command dispatch, parsing and replies',
    zfree: 'memory allocation',
    malloc_usable_size: 'memory allocation',
    listAddNodeTail: 'other',
    luaRedisPCall: 'Redis <-> Lua: script calls, arguments and replies',
  });
});

test('without the Lua span, unnamed code of the binary is not guessed to be Lua', () => {
  const { groups } = groupProfile(parseReport(REPORT), 'redis-check-rdb', undefined);
  expect(groups.find((g) => g.group === 'Lua: interpreter, cjson, cmsgpack')!.percent).toBe(12);
  expect(groups.find((g) => g.group === 'Redis static functions (no symbol)')!.percent).toBe(25);
});
