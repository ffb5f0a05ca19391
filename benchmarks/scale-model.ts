// docs/scaling.md's model as arithmetic, so bench-scale can print what it predicts for the shape
// it runs beside what it measured. MODEL is the one home of the model's per-unit costs: each is
// quoted in the docs/scaling.md row DOC_ROWS names, and tests/benchmarks/scale-model.test.ts fails
// when a row and MODEL disagree. Pure: no I/O.
import { DEFAULT_IDENTIFY_MARGIN_MS } from '../bot/gateway/identify/redis-identify-throttler.js';
import { floorSeconds } from './cold-start-figures.js';

/** The per-unit costs of docs/scaling.md (flat-out quiet runs; bench-scale's loaded ones are not in). */
export const MODEL = {
  /** A gateway pod's primary (Kurasuta's master process), anonymous MB. */
  primaryAnonymousMb: 25,
  /** A cluster process: 54 MB anonymous at 10 shards and 66 at 50, so 51 + 0.3 per shard. */
  clusterAnonymousMb: 51,
  clusterAnonymousMbPerShard: 0.3,
  /** The Ear keeps nothing per guild (GUILD_CREATE is dropped at the door). */
  anonymousMbPerGuild: 0,
  /** Ear CPU per GUILD_CREATE at startup. */
  guildCreateMicroseconds: 44,
  /** Ear CPU per forwarded dispatch: receive and parse, then the job it goes out in. */
  receiveMicroseconds: 8,
  perJobMicroseconds: 23,
  /** Redis CPU per dispatch, enqueue to completion, at partial batches (a lower bound). */
  redisMicroseconds: 40,
  /** Worker framework CPU per dispatch (a handler that does nothing), a lower bound. */
  workerMicroseconds: 23.6,
  /** Shardwarden's identify throttle spaces a bucket's turns a window plus this. */
  identifyMarginMs: DEFAULT_IDENTIFY_MARGIN_MS,
} as const;

/** The docs/scaling.md table row (its first cell's start) that quotes each MODEL figure. */
export const DOC_ROWS: Record<keyof typeof MODEL, string> = {
  primaryAnonymousMb: 'Ear memory',
  clusterAnonymousMb: 'Ear memory',
  clusterAnonymousMbPerShard: 'Ear memory',
  anonymousMbPerGuild: 'Ear memory',
  guildCreateMicroseconds: 'Ear, per GUILD_CREATE at startup',
  receiveMicroseconds: 'gateway CPU for the stream',
  perJobMicroseconds: 'gateway CPU for the stream',
  redisMicroseconds: 'Redis CPU, the same at 5,000 dispatches/s',
  workerMicroseconds: 'Worker CPU, framework per dispatch',
  identifyMarginMs: 'IDENTIFY',
};

export interface ScaleShape {
  shards: number;
  pods: number;
  clustersPerPod: number;
  guilds: number;
  maxConcurrency: number;
  identifyWindowMs: number;
  /** The forwarder's batch window (SHARDWARDEN_BATCH_DELAY_MS). */
  batchDelayMs: number;
}

/**
 * Mean dispatches per job when a cluster process forwards `perProcessRate`/s in windows of
 * `delayMs`, an enqueue taking `enqueueRoundTripMs`. The forwarder sends a partial batch only
 * when nothing is in flight, so a batch takes in its window and then the previous batch's round
 * trip (bot/gateway/forwarding/dispatch-forwarder.ts, pump).
 */
export function expectedBatchSize(perProcessRate: number, delayMs: number, enqueueRoundTripMs = 0): number {
  return 1 + (perProcessRate * (delayMs + enqueueRoundTripMs)) / 1000;
}

/**
 * What the model predicts for `shape` (memory, identify time) and for a stream of `rate`/s whose
 * enqueues took `enqueueRoundTripMs` each (measured: the model has no figure for it under load).
 */
export function predict(shape: ScaleShape, rate: number, enqueueRoundTripMs = 0) {
  const clusters = shape.pods * shape.clustersPerPod;
  const shardsPerCluster = shape.shards / clusters;
  const clusterMb = MODEL.clusterAnonymousMb + MODEL.clusterAnonymousMbPerShard * shardsPerCluster;
  const batch = expectedBatchSize(rate / clusters, shape.batchDelayMs, enqueueRoundTripMs);
  const gatewayUs = MODEL.receiveMicroseconds + MODEL.perJobMicroseconds / batch;
  const windows = Math.ceil(shape.shards / shape.maxConcurrency);
  return {
    clusterAnonymousMb: clusterMb,
    gatewayAnonymousMb: shape.pods * MODEL.primaryAnonymousMb + clusters * clusterMb,
    anonymousMbPerThousandGuilds: MODEL.anonymousMbPerGuild * 1000,
    guildCreateMicroseconds: MODEL.guildCreateMicroseconds,
    // The last bucket's last IDENTIFY goes out (windows - 1) spacings after the first.
    identifySpanSeconds: ((windows - 1) * (shape.identifyWindowMs + MODEL.identifyMarginMs)) / 1000,
    floorSeconds: floorSeconds(shape, shape.identifyWindowMs),
    meanBatchSize: batch,
    gatewayMicrosecondsPerDispatch: gatewayUs,
    redisMicrosecondsPerDispatch: MODEL.redisMicroseconds,
    workerMicrosecondsPerDispatch: MODEL.workerMicroseconds,
    // One Redis is one core: the first wall of a single-master bot.
    redisSaturationRate: 1e6 / MODEL.redisMicroseconds,
  };
}

/** One row of the predicted/measured table (docs/scaling.md prints the same). */
export function compared(measure: string, predicted: number, measured: number) {
  const round = (n: number) => Number(n.toPrecision(3));
  return {
    measure,
    predicted: round(predicted),
    measured: round(measured),
    ratio: predicted === 0 ? null : round(measured / predicted),
  };
}
