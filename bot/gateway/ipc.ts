// Messages between the pod's primary process and its cluster processes (Node cluster IPC).
export type ClusterMessage =
  | { shardwarden: 'shard'; shardId: number; ready: boolean; latencyMs?: number }
  | { shardwarden: 'stopped'; clusterId: number; flushed: boolean }
  // Sent every second by each cluster's event loop, with the longest delay it saw meanwhile:
  // heartbeats live in the cluster processes, so their loops are the ones /healthz must watch.
  | { shardwarden: 'alive'; clusterId: number; loopDelayMs: number }
  // Shards Discord refused for good (a close code it lets no one recover from, a bad token):
  // they stay down until the pod restarts, and this says why.
  | { shardwarden: 'halted'; clusterId: number; shardIds: number[]; reason: string };

/**
 * A cluster process exits with this when Discord refused its shards for good (see
 * UnrecoverableGatewayError): the primary does not start it again, since every restart would
 * spend a session start or an invalid request and change nothing.
 */
export const UNRECOVERABLE_EXIT_CODE = 78;

export const ALIVE_INTERVAL_MS = 1_000;
/** An event loop stuck this long (or a cluster silent this long) fails /healthz. */
export const STALL_LIMIT_MS = 10_000;

export type PrimaryMessage = { shardwarden: 'shutdown'; deadlineMs: number };

export function isShardwardenMessage(m: unknown): m is ClusterMessage | PrimaryMessage {
  return typeof m === 'object' && m !== null && 'shardwarden' in m;
}
