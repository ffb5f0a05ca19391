// docs/scaling.md's model as bench-scale computes it: the figures it prints beside a run are the
// document's arithmetic on MODEL, and the document quotes MODEL's per-unit costs, not other ones.
import { readFileSync } from 'node:fs';
import {
  compared,
  DOC_ROWS,
  expectedBatchSize,
  MODEL,
  predict,
  type ScaleShape,
} from '../../benchmarks/scale-model.js';

const shape: ScaleShape = {
  shards: 256,
  pods: 8,
  clustersPerPod: 2,
  guilds: 256_000,
  maxConcurrency: 16,
  identifyWindowMs: 5_000,
  batchDelayMs: 5,
};

/** The docs/scaling.md table rows whose first cell starts with `start`. */
function docRows(start: string): string[] {
  const doc = readFileSync(new URL('../../docs/scaling.md', import.meta.url), 'utf8');
  return doc.split('\n').filter((line) => line.startsWith(`| ${start}`));
}

describe('the scaling model', () => {
  it.each(Object.entries(DOC_ROWS))('quotes MODEL.%s in its docs/scaling.md row', (key, row) => {
    const value = MODEL[key as keyof typeof MODEL];
    const rows = docRows(row);
    expect(rows).not.toHaveLength(0);
    // The number on its own (not the 25 of 250), as the document writes it.
    const number = new RegExp(`(?<![\\d.,])${String(value).replace('.', '\\.')}(?![\\d]|\\.\\d)`);
    expect(rows.some((line) => number.test(line))).toBe(true);
  });

  it('predicts the identify floor and the throttle-spaced span from the first IDENTIFY to the last', () => {
    const p = predict(shape, 0);
    // 16 identifies per bucket: 16 windows of 5 s is the floor; the last goes out 15 spacings in.
    expect(p.floorSeconds).toBe(80);
    expect(p.identifySpanSeconds).toBeCloseTo((15 * (5_000 + MODEL.identifyMarginMs)) / 1000);
  });

  it('predicts the gateway memory from the per-process and per-shard costs', () => {
    const p = predict(shape, 0);
    const cluster = MODEL.clusterAnonymousMb + MODEL.clusterAnonymousMbPerShard * 16;
    expect(p.clusterAnonymousMb).toBeCloseTo(cluster);
    expect(p.gatewayAnonymousMb).toBeCloseTo(8 * MODEL.primaryAnonymousMb + 16 * cluster);
  });

  it('sizes batches from the per-process rate, the batch window and the enqueue round trip', () => {
    expect(expectedBatchSize(0, 5)).toBe(1);
    expect(expectedBatchSize(200, 5)).toBe(2);
    // Behind an enqueue in flight a partial batch waits: 200/s over 5 ms + a 20 ms reply is 6.
    expect(expectedBatchSize(200, 5, 20)).toBe(6);
    // 3,200/s over 16 processes is 200/s each: batches of 2, the per-job cost halved.
    expect(predict(shape, 3_200).gatewayMicrosecondsPerDispatch).toBeCloseTo(
      MODEL.receiveMicroseconds + MODEL.perJobMicroseconds / 2,
    );
    expect(predict(shape, 3_200, 20).meanBatchSize).toBe(6);
  });

  it('compares a measured figure with its prediction, with no ratio for a predicted zero', () => {
    expect(compared('x', 40, 60)).toEqual({ measure: 'x', predicted: 40, measured: 60, ratio: 1.5 });
    expect(compared('y', 0, 3).ratio).toBeNull();
  });
});
