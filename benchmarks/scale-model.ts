// docs/scaling.md's model as arithmetic, so bench-scale can print what it predicts for the shape
// it runs beside what it measured. The per-unit costs are docs/scaling.md's measured ones (its
// "Measured per-unit costs" table); when that table changes, so does MODEL. Pure: no I/O.
import { floorSeconds } from './cold-start-figures.js';

/** The per-unit costs of docs/scaling.md. */
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
  /** Shardwarden's identify throttle spaces a bucket's IDENTIFYs a window plus this. */
  identifyMarginMs: 250,
} as const;

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

/** Mean dispatches per job when a cluster process forwards `perProcessRate`/s in windows of `delayMs`. */
export function expectedBatchSize(perProcessRate: number, delayMs: number): number {
  // A batch opens with one dispatch and takes in what arrives during its window.
  return 1 + (perProcessRate * delayMs) / 1000;
}

/** What the model predicts for `shape` (memory, identify time) and for a stream of `rate`/s. */
export function predict(shape: ScaleShape, rate: number) {
  const clusters = shape.pods * shape.clustersPerPod;
  const shardsPerCluster = shape.shards / clusters;
  const clusterMb = MODEL.clusterAnonymousMb + MODEL.clusterAnonymousMbPerShard * shardsPerCluster;
  const batch = expectedBatchSize(rate / clusters, shape.batchDelayMs);
  const gatewayUs = MODEL.receiveMicroseconds + MODEL.perJobMicroseconds / batch;
  const windows = Math.ceil(shape.shards / shape.maxConcurrency);
  return {
    clusterAnonymousMb: clusterMb,
    gatewayAnonymousMb: shape.pods * MODEL.primaryAnonymousMb + clusters * clusterMb,
    anonymousMbPerThousandGuilds: MODEL.anonymousMbPerGuild * 1000,
    guildCreateMicroseconds: MODEL.guildCreateMicroseconds,
    // The last bucket's last IDENTIFY goes out (windows - 1) spacings after the first.
    readySeconds: ((windows - 1) * (shape.identifyWindowMs + MODEL.identifyMarginMs)) / 1000,
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
