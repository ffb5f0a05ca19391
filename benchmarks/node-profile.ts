// Where a Node process (the Ear's, the default client's) spends its CPU over a phase of a
// benchmark: Linux perf samples every thread of the process (perf-profile.ts) and the samples are
// grouped by the kind of work, JavaScript by the package its file belongs to.
//
// The process must run with NODE_PERF_FLAGS: V8 then writes /tmp/perf-<pid>.map, which names its
// JIT code for perf ("JS:*parse file:///…/node_modules/ws/lib/receiver.js:10:3"), and puts
// interpreted frames on the native stack. The node binary's own functions (V8's JSON parser, its
// garbage collector, Node's C++) are named by its symbols. Self time only: a JSON.parse is
// counted as V8's parser, whoever called it.
import { rmSync } from 'node:fs';
import {
  groupRows,
  recordPerf,
  type Profile,
  type ProfileRecording,
  type ProfileRow,
} from './perf-profile.js';

/** The V8 flags a process needs to be profiled by name (NODE_OPTIONS accepts both). */
export const NODE_PERF_FLAGS = ['--perf-basic-prof', '--interpreted-frames-native-stack'];

export const perfMapOf = (pid: number) => `/tmp/perf-${pid}.map`;

const V8 = /^(v8::|heap::base::|cppgc::)/;
/** V8's collector: marking, scavenging, sweeping, compaction and what they visit (not allocation). */
const GC =
  /^(heap::base::|cppgc::)|^v8::internal::.*(Scaveng|MarkCompact|Marking|Marker|Sweep|Evacuat|GCTracer|RememberedSet|SlotSet|MinorMS|Worklist|GlobalHandles|TracedHandles|PointersUpdating|Compactor|WeakObjects|HeapVisitor|CollectGarbage|GarbageCollection|IterateRoots)/;

/** The kinds of native work, in the order a row is tested against them; the first that matches wins. */
const GROUPS: { group: string; matches: (row: ProfileRow) => boolean }[] = [
  { group: 'kernel: sockets, syscalls, scheduling', matches: (r) => r.kernel },
  { group: 'garbage collection (V8)', matches: (r) => GC.test(r.symbol) },
  { group: 'JSON.parse (V8)', matches: (r) => /JsonParser|JSDataObjectBuilder/.test(r.symbol) },
  { group: 'JSON.stringify (V8)', matches: (r) => /JsonStringifier/.test(r.symbol) },
  {
    // Background threads of the same process compile hot functions.
    group: 'V8 compilers and parser',
    matches: (r) =>
      /^v8::internal::((compiler|maglev|baseline|turboshaft|interpreter)::|(Parser|ParserBase|PreParser|Scanner|Compiler|BytecodeGenerator)\b)/.test(
        r.symbol,
      ),
  },
  {
    group: 'regular expressions (V8)',
    matches: (r) => /^RegExp:/.test(r.symbol) || /^v8::internal::(RegExp|Irregexp)/.test(r.symbol),
  },
  {
    // V8's own code in the JIT map is named by its kind ("Builtin:…", "Stub:…").
    group: 'V8 builtins and interpreter',
    matches: (r) =>
      /^Builtins?[_:]/.test(r.symbol) || (r.dso.startsWith('[JIT]') && /^[A-Za-z]+:/.test(r.symbol)),
  },
  { group: 'V8 runtime: objects, strings, allocation, inline caches', matches: (r) => V8.test(r.symbol) },
  {
    group: 'memory allocation (malloc)',
    matches: (r) =>
      /^(__libc_|_int_|__)?(malloc|calloc|realloc|free|cfree|memalign)(_consolidate)?$|^(unlink_chunk|malloc_consolidate|tcache_)/.test(
        r.symbol,
      ) || /^operator (new|delete)/.test(r.symbol),
  },
  // What libc's symbols do not name (its internals are bare addresses) counts here too.
  { group: 'libc: copies and the rest', matches: (r) => /^libc/.test(r.dso) },
  {
    group: 'Node.js and libuv (C++: streams, sockets, timers)',
    matches: (r) => /^(node::|uv_|uv__)/.test(r.symbol) || /libuv/.test(r.dso),
  },
];
const OTHER = 'other';

/**
 * A JavaScript frame's group and short name: the package of its file (node_modules/<package>),
 * Shardwarden's own code (its dist/), or Node's JavaScript (node:…).
 */
function javascript(symbol: string): { group: string; symbol: string } {
  // The file is the last word: a name may hold spaces ("get foo").
  const m = /^JS:[*~^+']?(.*) (\S+?)(?::\d+:\d+)?$/.exec(symbol);
  if (!m) return { group: 'JavaScript: unnamed', symbol: '(unnamed JavaScript)' };
  const name = m[1] || '(anonymous)';
  const file = m[2]!;
  const inPackage = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(file);
  if (inPackage)
    return { group: `JavaScript: ${inPackage[1]}`, symbol: `${name} (${inPackage[1]}/${inPackage[2]})` };
  // The benchmark's own preloads (flood-probe.js wraps the shards' emit) are not Shardwarden's.
  const probe = /\/dist\/(benchmarks\/.*)$/.exec(file);
  if (probe) return { group: 'JavaScript: the benchmark', symbol: `${name} (${probe[1]})` };
  const own = /\/dist\/(.*)$/.exec(file);
  if (own) return { group: 'JavaScript: Shardwarden', symbol: `${name} (${own[1]})` };
  if (file.startsWith('node:')) return { group: 'JavaScript: Node.js', symbol: `${name} (${file})` };
  return { group: 'JavaScript: other', symbol: `${name} (${file})` };
}

/** Groups the rows of a Node process's report. */
export function groupNodeProfile(rows: ProfileRow[], topCount = 15): Omit<Profile, 'samples'> {
  return groupRows(
    rows,
    (row) =>
      row.dso.startsWith('[JIT]') && row.symbol.startsWith('JS:')
        ? javascript(row.symbol)
        : {
            group: GROUPS.find((g) => g.matches(row))?.group ?? OTHER,
            // Bare addresses are one entry per group: each alone is a sliver of one function.
            ...(/^0x[0-9a-f]+$/.test(row.symbol) && { symbol: `(unnamed code: ${row.dso})` }),
          },
    topCount,
  );
}

/**
 * Starts sampling Node process `pid` (started with NODE_PERF_FLAGS) into `dir`. Its symbol map is
 * removed when the recording stops, read or not: the process keeps writing to the file it opened,
 * no longer in /tmp.
 */
export async function profileNode(pid: number, dir: string, name: string): Promise<ProfileRecording> {
  const recording = await recordPerf(pid, dir, name, async (rows) => groupNodeProfile(rows));
  return { stop: () => recording.stop().finally(() => rmSync(perfMapOf(pid), { force: true })) };
}
