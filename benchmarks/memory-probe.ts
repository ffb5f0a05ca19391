// Preloaded (`--import`) into the operator by bench-operator: appends process.memoryUsage() as a
// JSON line to MEMORY_PROBE_FILE every MEMORY_PROBE_INTERVAL_MS (500), so the benchmark sees the
// peak between its own reads, and writes a heap snapshot next to it on SIGUSR2.
import { appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const file = process.env.MEMORY_PROBE_FILE;
if (file) {
  const sample = () => {
    const m = process.memoryUsage();
    appendFileSync(
      file,
      `${JSON.stringify({ t: Date.now(), rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })}\n`,
    );
  };
  setInterval(sample, Number(process.env.MEMORY_PROBE_INTERVAL_MS ?? 500)).unref();
  process.on('SIGUSR2', () => {
    const path = writeHeapSnapshot(join(dirname(file), `operator-${Date.now()}.heapsnapshot`));
    appendFileSync(file, `${JSON.stringify({ t: Date.now(), heapSnapshot: path })}\n`);
  });
}
