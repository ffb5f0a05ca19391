// Kurasuta's ShardingManager always runs shards 0..shardCount-1. A gateway pod runs only its
// range, so this subclass replaces the primary branch of spawn(): it builds Kurasuta Clusters
// from the pod's shard list (split over clustersPerPod) and starts them all at once, since
// identify pacing is done across pods through Redis, not by Kurasuta's 5 s sleeps between
// clusters. Worker processes take Kurasuta's own path (startCluster) unchanged.
import cluster from 'node:cluster';
import type * as Kurasuta from 'kurasuta';
import { Cluster, ShardingManager, startCluster } from './load-kurasuta.js';

export interface RangeShardingOptions extends Kurasuta.SharderOptions {
  /** The shards of each cluster process of this pod. */
  clusterShards: number[][];
  shardCount: number;
}

export class RangeShardingManager extends ShardingManager {
  private readonly clusterShards: number[][];
  private readonly nodeArgs?: string[];

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
    for (const c of clusters) this.clusters.set(c.id, c);
    await Promise.all(
      clusters.map(async (c) => {
        for (;;) {
          try {
            await c.spawn();
            return;
          } catch (err) {
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
      }),
    );
  }

  /** Stops respawning and kills the cluster processes (after they were asked to shut down). */
  stopAll(): void {
    this.respawn = false;
    for (const c of this.clusters.values()) c.kill();
  }
}
