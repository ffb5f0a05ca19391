// The grouping of a Node process's perf samples (benchmarks/node-profile.ts): V8's and Node's
// native work by kind, JavaScript by the package its file belongs to, JIT objects' names read whole.
import { parseReport } from '../../benchmarks/perf-profile.js';
import { groupNodeProfile } from '../../benchmarks/node-profile.js';

const REPORT = `# Samples: 20K of event 'cpu-clock:ppp'
#
#      Samples  Shared Object        Symbol
# ............  ...................  .........................................................
#
     1200  node                 [.] v8::internal::JsonParser<unsigned char>::ScanJsonString
       800  node                 [.] v8::internal::JSDataObjectBuilder::BuildFromIterator<v8::internal::JsonParser<unsigned char>::NamedPropertyIterator&>
       600  node                 [.] v8::internal::JsonStringifier::SerializeString<false>
     1000  node                 [.] v8::internal::Scavenger::ScavengePage
       400  node                 [.] v8::internal::MarkCompactCollector::ProcessMarkingWorklist
       900  [kernel.kallsyms]    [k] __tcp_transmit_skb
       700  [JIT] tid 4242       [.] JS:*processFrame file:///w/node_modules/@discordjs/ws/dist/index.mjs:1200:20
       500  [JIT] tid 4242       [.] JS:~addBulk file:///w/node_modules/bullmq/dist/esm/classes/queue.js:88:9
       400  [JIT] tid 4242       [.] JS:*forward file:///w/dist/bot/gateway/forwarding/dispatch-forwarder.js:60:3
       300  [JIT] tid 4242       [.] JS:^emit node:events:460:44
       200  [JIT] tid 4242       [.] JS:* file:///w/node_modules/ws/lib/receiver.js:300:5
       300  node                 [.] Builtins_InterpreterEntryTrampoline
       200  [JIT] tid 4242       [.] Builtin:InterpreterEntryTrampoline
       500  node                 [.] v8::internal::StringTable::LookupKey<v8::internal::SeqSubStringKey<v8::internal::SeqOneByteString>, v8::internal::Isolate>
       400  libc.so.6            [.] _int_malloc
       300  libc.so.6            [.] __memmove_avx512_unaligned_erms
       200  node                 [.] node::StreamBase::WriteV
       100  node                 [.] uv__io_poll
       100  [JIT] tid 4242       [.] 0x00007f0000001234
       200  [unknown]            [k] 0xffffffff81234567
       100  node                 [.] v8::internal::compiler::Schedule::AddNode
       100  node                 [.] v8::internal::Heap::AllocateRaw
       100  [JIT] tid 4242       [.] JS:*get size file:///w/node_modules/bullmq/dist/esm/classes/job.js:5:1
       100  [JIT] tid 4242       [.] JS:'probed file:///w/dist/benchmarks/flood-probe.js:48:20
       100  [JIT] tid 4242       [.] RegExp:^[0-9]{1,20}$
       200  node                 [.] node::LoadEnvironment
`;

test('JIT objects and JavaScript symbols are read whole, spaces included', () => {
  const rows = parseReport(REPORT);
  expect(rows).toHaveLength(26);
  expect(rows[6]).toEqual({
    percent: 7, // of the rows' 10,000 samples
    dso: '[JIT] tid 4242',
    symbol: 'JS:*processFrame file:///w/node_modules/@discordjs/ws/dist/index.mjs:1200:20',
    kernel: false,
  });
  // Kernel code is told by perf's [k], also where its object has no name.
  expect(rows[19]).toEqual({ percent: 2, dso: '[unknown]', symbol: '0xffffffff81234567', kernel: true });
  expect(rows[1]!.symbol).toBe(
    'v8::internal::JSDataObjectBuilder::BuildFromIterator<v8::internal::JsonParser<unsigned char>::NamedPropertyIterator&>',
  );
});

test('native work is grouped by kind and JavaScript by package', () => {
  const { groups, top } = groupNodeProfile(parseReport(REPORT), 50);
  expect(Object.fromEntries(groups.map((g) => [g.group, g.percent]))).toEqual({
    'JSON.parse (V8)': 20,
    'JSON.stringify (V8)': 6,
    'garbage collection (V8)': 14,
    'kernel: sockets, syscalls, scheduling': 11,
    'JavaScript: @discordjs/ws': 7,
    'JavaScript: bullmq': 6,
    'JavaScript: Shardwarden': 4,
    'JavaScript: the benchmark': 1,
    'JavaScript: Node.js': 3,
    'JavaScript: ws': 2,
    'V8 builtins and interpreter': 5,
    'V8 compilers and parser': 1,
    'regular expressions (V8)': 1,
    // An allocation's slow path is the runtime's, not the collector's.
    'V8 runtime: objects, strings, allocation, inline caches': 6,
    'memory allocation (malloc)': 4,
    'libc: copies and the rest': 3,
    'Node.js and libuv (C++: streams, sockets, timers)': 5,
    other: 1,
  });
  expect(groups[0]).toEqual({ group: 'JSON.parse (V8)', percent: 20 });
  const named = Object.fromEntries(top.map((t) => [t.symbol, t.group]));
  // A frame is named by its function and its file within the package (or Shardwarden's dist/).
  expect(named['processFrame (@discordjs/ws/dist/index.mjs)']).toBe('JavaScript: @discordjs/ws');
  expect(named['forward (bot/gateway/forwarding/dispatch-forwarder.js)']).toBe('JavaScript: Shardwarden');
  expect(named['(anonymous) (ws/lib/receiver.js)']).toBe('JavaScript: ws');
  expect(named['emit (node:events)']).toBe('JavaScript: Node.js');
  expect(named['get size (bullmq/dist/esm/classes/job.js)']).toBe('JavaScript: bullmq');
  // Whatever tier V8 marks the code with (*, ~, ^, +, ').
  expect(named['probed (benchmarks/flood-probe.js)']).toBe('JavaScript: the benchmark');
});
