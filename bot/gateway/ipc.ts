// Messages between the pod's primary process and its cluster processes (Node cluster IPC).
export type ClusterMessage =
  | { shardwarden: 'shard'; shardId: number; ready: boolean; latencyMs?: number }
  | { shardwarden: 'stopped'; clusterId: number; flushed: boolean };

export type PrimaryMessage = { shardwarden: 'shutdown'; deadlineMs: number };

export function isShardwardenMessage(m: unknown): m is ClusterMessage | PrimaryMessage {
  return typeof m === 'object' && m !== null && 'shardwarden' in m;
}
