// Queue names and key prefixes shared by the gateway (producer), the workers (consumers) and the
// operator (backlog for autoscaling). All keys of one bot share a Redis Cluster hash slot.

export const QUEUES = {
  /** INTERACTION_CREATE only: low latency, its own workers. */
  interactions: 'interactions',
  /** Every other forwarded dispatch. */
  events: 'events',
  /** Work the workers schedule for themselves (role sync, slow follow-ups). */
  tasks: 'tasks',
} as const;

/** Every queue the workers consume; the autoscaler counts the backlog of all of them. */
export const ALL_QUEUES: QueueName[] = [QUEUES.interactions, QUEUES.events, QUEUES.tasks];

/**
 * Attempts and back-off per queue, set by whoever adds the job. An interaction has one chance
 * (its 3-second window is gone by the time a retry would run; the worker answers with an error
 * instead); events and tasks are retried with exponential back-off, then kept as failed.
 */
export const RETRY_POLICY = {
  interactions: { attempts: 1 },
  events: { attempts: 5, backoff: { type: 'exponential', delay: 1_000 } },
  tasks: { attempts: 3, backoff: { type: 'exponential', delay: 5_000 } },
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
