// Preloaded (`--import`) into the operator by bench-operator: appends process.memoryUsage() as a
// JSON line to MEMORY_PROBE_FILE every MEMORY_PROBE_INTERVAL_MS (500), so the benchmark sees the
// peak between its own reads, and writes a heap snapshot next to it on SIGUSR2.
// Two more looks, to tell what a peak is made of:
// - MEMORY_PROBE_PEAK_SNAPSHOT_MB: one heap snapshot the first time the used heap reaches that
//   size. A snapshot collects garbage first, so it holds what was live at the peak; the rest of
//   the peak was garbage the GC had not yet collected.
// - MEMORY_PROBE_HEAP_PROFILE=1: V8's sampling heap profiler from the start, counting objects
//   that scavenges and major GCs collected too (so it shows what was allocated, not only what
//   lives); written on SIGUSR2 beside the snapshot (open the .heapprofile in Chrome DevTools).
import { appendFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const file = process.env.MEMORY_PROBE_FILE;
const MiB = 2 ** 20;

/** Records one line of the probe file. */
const record = (fields: Record<string, unknown>) =>
  appendFileSync(file!, `${JSON.stringify({ t: Date.now(), ...fields })}\n`);

const snapshot = (kind: string) =>
  record({ [kind]: writeHeapSnapshot(join(dirname(file!), `operator-${kind}-${Date.now()}.heapsnapshot`)) });

async function startHeapProfile(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 64 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return session;
}

async function writeHeapProfile(session: Session): Promise<void> {
  const { profile } = await session.post('HeapProfiler.getSamplingProfile');
  const path = join(dirname(file!), `operator-${Date.now()}.heapprofile`);
  writeFileSync(path, JSON.stringify(profile));
  record({ heapProfile: path });
}

if (file) {
  const peakSnapshotBytes = Number(process.env.MEMORY_PROBE_PEAK_SNAPSHOT_MB ?? 0) * MiB;
  let peakSnapshotTaken = false;
  const sample = () => {
    const m = process.memoryUsage();
    record({
      rss: m.rss,
      heapTotal: m.heapTotal,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    });
    if (peakSnapshotBytes > 0 && !peakSnapshotTaken && m.heapUsed >= peakSnapshotBytes) {
      peakSnapshotTaken = true;
      snapshot('peakHeapSnapshot');
    }
  };
  setInterval(sample, Number(process.env.MEMORY_PROBE_INTERVAL_MS ?? 500)).unref();
  // A profiler that fails to start is recorded, not an unhandled rejection that ends the operator.
  const profiling =
    process.env.MEMORY_PROBE_HEAP_PROFILE === '1'
      ? startHeapProfile().catch((err: unknown) => {
          record({ heapProfileError: String(err) });
          return undefined;
        })
      : undefined;
  process.on('SIGUSR2', () => {
    void (async () => {
      const session = await profiling;
      if (session) await writeHeapProfile(session);
      snapshot('heapSnapshot');
    })();
  });
}
