// A synthetic scenario as the demo's Prometheus would return it, every 2 s for 200 s: a burst at
// 40 s whose backlog scales the workers 1 → 3 → 1, and a reshard at 120 s from 4 shards on
// generation 1 to 6 on generation 2, with a gap (no sample) in the backlog at 30 s.
import type { ReportData } from '../../demo/report.js';
import type { PromSeries } from '../../testenv/index.js';

const START = 1_790_000_000;
const STEP = 2;

function series(metric: Record<string, string>, value: (s: number) => number | undefined): PromSeries {
  const values: [number, string][] = [];
  for (let s = 0; s <= 200; s += STEP) {
    const v = value(s);
    if (v !== undefined) values.push([START + s, String(v)]);
  }
  return { metric, values };
}

const backlog = (s: number) =>
  s === 30 ? undefined : s < 40 ? 0 : s < 50 ? 1500 - (s - 40) * 20 : Math.max(0, 1300 - (s - 50) * 40);
const replicas = (s: number) => (s < 42 ? 1 : s < 46 ? 2 : s < 90 ? 3 : 1);
const generation1 = (s: number) =>
  s < 4 ? undefined : s < 10 ? Math.min(4, s - 4) : s < 150 ? 4 : undefined;
const generation2 = (s: number) => (s < 124 ? undefined : Math.min(6, Math.floor((s - 124) / 3)));

export const SYNTHETIC_REPORT: ReportData = {
  bot: { namespace: 'demo', name: 'demo-bot' },
  start: START,
  end: START + 200,
  stepSeconds: STEP,
  backlog: [series({}, backlog)],
  workerReplicas: [series({}, replicas)],
  shardsReadyByGeneration: [
    series({ generation: '2' }, generation2),
    series({ generation: '1' }, generation1),
  ],
  shardsReady: [
    series({}, (s) => {
      const n = Math.max(generation1(s) ?? 0, generation2(s) ?? 0);
      return n === 0 ? undefined : n;
    }),
  ],
};
