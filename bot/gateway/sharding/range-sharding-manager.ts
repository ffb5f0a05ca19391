// Kurasuta's ShardingManager always runs shards 0..shardCount-1. A gateway pod runs only its
// range, so this subclass replaces the primary branch of spawn(): it builds Kurasuta Clusters
// from the pod's shard list (split over clustersPerPod) and starts them all at once, since
// identify pacing is done across pods through Redis, not by Kurasuta's 5 s sleeps between
// clusters. Worker processes take Kurasuta's own path (startCluster) unchanged.
// Respawns are done here too: Kurasuta's exit listener returns the respawn's promise to nobody,
// so a respawned cluster that missed its ready timeout (Redis away, a long identify queue) was
// an unhandled rejection, which ends the primary and every other cluster's buffer with it.
// A cluster process that exits with UNRECOVERABLE_EXIT_CODE (Discord refused its shards for
// good) is not started again.
import cluster from 'node:cluster';
import type * as Kurasuta from 'kurasuta';
import { UNRECOVERABLE_EXIT_CODE } from '../ipc.js';
import { Cluster, ShardingManager, startCluster } from './load-kurasuta.js';

export interface RangeShardingOptions extends Kurasuta.SharderOptions {
  /** The shards of each cluster process of this pod. */
  clusterShards: number[][];
  shardCount: number;
}

/** Kurasuta's Cluster keeps its bound exit listener here and attaches it to each new worker. */
interface ExitListening {
  _exitListenerFunction: (code: number | null, signal: string | null) => void;
}

export class RangeShardingManager extends ShardingManager {
  private readonly clusterShards: number[][];
  private readonly nodeArgs?: string[];
  private readonly startAttempts = new Map<number, number>();
  /** Clusters whose process exited with UNRECOVERABLE_EXIT_CODE: never started again. */
  private readonly halted = new Set<number>();

  constructor(path: string, options: RangeShardingOptions) {
    super(path, { ...options, clusterCount: options.clusterShards.length });
    this.clusterShards = options.clusterShards;
    this.nodeArgs = options.nodeArgs;
  }

  override async spawn(): Promise<void> {
    if (!cluster.isPrimary) return startCluster(this);
    // Kurasuta's own node arguments for the cluster processes (V8 heap settings).
    if (this.nodeArgs) cluster.setupPrimary({ execArgv: this.nodeArgs });
    const clusters = this.clusterShards.map((shards, id) => new Cluster({ id, shards, manager: this }));
    for (const c of clusters) {
      this.clusters.set(c.id, c);
      (c as unknown as ExitListening)._exitListenerFunction = (code, signal) => {
        c.ready = false;
        c.worker = undefined;
        this.emit('debug', `cluster ${c.id} exited (code ${code}, signal ${signal})`);
        if (code === UNRECOVERABLE_EXIT_CODE) this.halted.add(c.id);
        else if (this.respawn) void this.startUntilReady(c, 500);
      };
    }
    await Promise.all(clusters.map((c) => this.startUntilReady(c, 0)));
  }

  /**
   * Starts a cluster process, and again (the late one killed) until one gets ready in time. A
   * process that exits while an earlier start still waits for it starts a new one of these; the
   * earlier one then retires instead of killing its successor.
   */
  private async startUntilReady(c: Kurasuta.Cluster, delayMs: number): Promise<void> {
    const attempt = (this.startAttempts.get(c.id) ?? 0) + 1;
    this.startAttempts.set(c.id, attempt);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const superseded = () => this.startAttempts.get(c.id) !== attempt || this.halted.has(c.id);
    for (;;) {
      if (superseded()) return;
      try {
        await c.spawn();
        return;
      } catch (err) {
        if (superseded()) return;
        this.emit(
          'error',
          new Error(
            `cluster ${c.id} (shards ${c.shards.join(',')}) failed to start: ${(err as Error).message}; retrying`,
          ),
        );
        if (!this.respawn) return;
        c.kill();
      }
    }
  }

  /** Stops respawning and kills the cluster processes (after they were asked to shut down). */
  stopAll(): void {
    this.respawn = false;
    for (const c of this.clusters.values()) c.kill();
  }
}
