// Queue names and key prefixes shared by the gateway (producer), the workers (consumers) and the
// operator (backlog for autoscaling). All keys of one bot share a Redis Cluster hash slot.

export const QUEUES = {
  /** INTERACTION_CREATE only: low latency, its own workers. */
  interactions: 'interactions',
  /** Every other forwarded dispatch. */
  events: 'events',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export function queuePrefix(botName: string): string {
  return `shardwarden:{${botName}}`;
}

/** Other per-bot keys (identify buckets, sessions). */
export function botKey(botName: string, ...parts: (string | number)[]): string {
  return [queuePrefix(botName), ...parts].join(':');
}

/** What a forwarded dispatch carries into BullMQ. */
export interface DispatchJob {
  /** Dispatch type, e.g. INTERACTION_CREATE. */
  t: string;
  /** The dispatch payload as Discord sent it. */
  d: unknown;
  shardId: number;
  /** The gateway sequence number within its session. */
  seq: number;
  /** When the gateway received it (ms since epoch). */
  receivedAt: number;
  /** Gateway generation that forwarded it (changes during a reshard). */
  generation: number;
}
