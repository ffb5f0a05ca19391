// docs/scaling.md's model as bench-scale computes it: the figures it prints beside a run must be
// the ones the document derives by hand for the same shape.
import { compared, expectedBatchSize, predict, type ScaleShape } from '../../benchmarks/scale-model.js';

const shape: ScaleShape = {
  shards: 256,
  pods: 8,
  clustersPerPod: 2,
  guilds: 256_000,
  maxConcurrency: 16,
  identifyWindowMs: 5_000,
  batchDelayMs: 5,
};

describe('the scaling model', () => {
  it('predicts the identify floor and the throttle-spaced READY time of a cold start', () => {
    const p = predict(shape, 0);
    // 16 identifies per bucket: 16 windows of 5 s is the floor; the last goes out 15 spacings in.
    expect(p.floorSeconds).toBe(80);
    expect(p.readySeconds).toBeCloseTo(15 * 5.25);
  });

  it('predicts the gateway memory from the per-process and per-shard costs', () => {
    const p = predict(shape, 0);
    expect(p.clusterAnonymousMb).toBeCloseTo(51 + 0.3 * 16);
    expect(p.gatewayAnonymousMb).toBeCloseTo(8 * 25 + 16 * (51 + 0.3 * 16));
  });

  it('sizes batches from the per-process rate and the batch window', () => {
    expect(expectedBatchSize(0, 5)).toBe(1);
    expect(expectedBatchSize(200, 5)).toBe(2);
    // 3,200/s over 16 processes is 200/s each: batches of 2, the per-job cost halved.
    expect(predict(shape, 3_200).gatewayMicrosecondsPerDispatch).toBeCloseTo(8 + 23 / 2);
  });

  it('compares a measured figure with its prediction, with no ratio for a predicted zero', () => {
    expect(compared('x', 40, 60)).toEqual({ measure: 'x', predicted: 40, measured: 60, ratio: 1.5 });
    expect(compared('y', 0, 3).ratio).toBeNull();
  });
});
