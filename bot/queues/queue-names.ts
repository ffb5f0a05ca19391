// Queue names and key prefixes shared by the gateway (producer), the workers (consumers) and the
// operator (backlog for autoscaling). All keys of one bot share a Redis Cluster hash slot.

export const QUEUES = {
  /** INTERACTION_CREATE only: low latency, its own workers. */
  interactions: 'interactions',
  /** Every other forwarded dispatch, in batches: one job carries up to SHARDWARDEN_BATCH_SIZE. */
  events: 'event-batches',
  /**
   * One dispatch per job, what gateways wrote before batching. Nothing writes it any more; the
   * workers consume it so that what an old gateway pod queues during an upgrade is processed.
   */
  singleEvents: 'events',
  /** Work the workers schedule for themselves (role sync, slow follow-ups). */
  tasks: 'tasks',
} as const;

/** Every queue the workers consume; the autoscaler counts the backlog of all of them. */
export const ALL_QUEUES: QueueName[] = [
  QUEUES.interactions,
  QUEUES.events,
  QUEUES.singleEvents,
  QUEUES.tasks,
];

/** The queues releases before namespaced keys wrote under `legacyQueuePrefix` (no batches yet). */
export const LEGACY_QUEUES: QueueName[] = ALL_QUEUES.filter((q) => q !== QUEUES.events);

/**
 * Attempts and back-off per queue, set by whoever adds the job. An interaction has one chance
 * (its 3-second window is gone by the time a retry would run; the worker answers with an error
 * instead); events and tasks are retried with exponential back-off, then kept as failed. A
 * batch's attempts are shared by its dispatches: a retry runs only those not done yet
 * (docs/workers.md).
 */
export const RETRY_POLICY = {
  interactions: { attempts: 1 },
  events: { attempts: 5, backoff: { type: 'exponential', delay: 1_000 } },
  tasks: { attempts: 3, backoff: { type: 'exponential', delay: 5_000 } },
} as const;

/** How long BullMQ keeps a failed job (its failed set), for inspection and a manual retry. */
export const KEEP_FAILED_SECONDS = 7 * 24 * 3600;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/**
 * A DiscordBot as Kubernetes names it. Its Redis keys carry both parts, so two bots of the same
 * name in two namespaces on one Redis never share a queue, a session or a backlog.
 */
export interface BotRef {
  namespace: string;
  name: string;
}

/** A process started without SHARDWARDEN_BOT_NAMESPACE is the bot of Kubernetes' default namespace. */
export const DEFAULT_NAMESPACE = 'default';

/**
 * Namespaces are DNS labels; object names DNS subdomains (the CRD refuses dots in new bots' names,
 * but bots created before that rule keep theirs). Neither contains the `/` that joins them.
 */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A bad namespace or name, naming which. */
export class BotRefError extends Error {
  constructor(
    readonly field: 'namespace' | 'name',
    value: unknown,
  ) {
    super(
      `bot ${field} ${JSON.stringify(value)} must be a DNS ${field === 'namespace' ? 'label' : 'subdomain'} (a-z, 0-9, '-'${field === 'name' ? ", '.'" : ''})`,
    );
  }
}

/** The bot's reference, or a BotRefError naming the part that is not valid. */
export function botRef(namespace: unknown, name: unknown): BotRef {
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace))
    throw new BotRefError('namespace', namespace);
  if (typeof name !== 'string' || !NAME.test(name)) throw new BotRefError('name', name);
  return { namespace, name };
}

/** A Discord snowflake as the API writes it (a decimal string). */
export function isDiscordId(value: unknown): value is string {
  return typeof value === 'string' && /^\d{1,20}$/.test(value);
}

/**
 * The bot's keys: queues (BullMQ prefix), gateway sessions, cooldowns, its modules' keys. The
 * braces are a Redis Cluster hash tag: every key of one bot lives in one slot, so scripts and
 * BullMQ's multi-key commands work on a cluster.
 */
export function queuePrefix(bot: BotRef): string {
  return taggedPrefix(`${bot.namespace}/${bot.name}`);
}

/** `shardwarden:` and a Redis Cluster hash tag: the one shape of every Shardwarden key prefix. */
const taggedPrefix = (tag: string) => `shardwarden:{${tag}}`;

/**
 * How many event partitions a bot may have (spec.redis.eventPartitions). Each partition is a
 * queue of event batches with its own hash tag, so a Redis Cluster spreads one bot's events, and
 * their claims, over its masters. Partition 0 is the bot's own prefix: a bot of one partition
 * keeps exactly the layout of releases before partitions.
 */
export const EVENT_PARTITIONS = { default: 1, max: 64 } as const;

/**
 * The key prefix of event partition `partition` (BullMQ prefix of its `event-batches` queue, and
 * of its dispatch claims): 0 is the bot's prefix, others carry `#<n>` inside the hash tag, a
 * character neither a namespace nor a name may contain.
 */
export function eventPartitionPrefix(bot: BotRef, partition: number): string {
  if (!Number.isInteger(partition) || partition < 0 || partition >= EVENT_PARTITIONS.max)
    throw new RangeError(`event partition ${partition} is not an integer in 0..${EVENT_PARTITIONS.max - 1}`);
  return partition === 0 ? queuePrefix(bot) : taggedPrefix(`${bot.namespace}/${bot.name}#${partition}`);
}

/** The prefixes of partitions 0..count-1. */
export function eventPartitionPrefixes(bot: BotRef, count: number): string[] {
  return Array.from({ length: count }, (_, p) => eventPartitionPrefix(bot, p));
}

/** A queue of the bot under the prefix it lives at; `partition` > 0 only for event partitions. */
export interface BotQueue {
  queue: QueueName;
  prefix: string;
  partition: number;
}

/**
 * Every queue a bot of `partitions` event partitions writes and its workers consume: the bot's
 * queues under its prefix (partition 0's events among them), then the other partitions' events.
 * What its backlog sums (the operator's autoscalers).
 */
export function botQueues(bot: BotRef, partitions: number): BotQueue[] {
  return [
    ...ALL_QUEUES.map((queue) => ({ queue, prefix: queuePrefix(bot), partition: 0 })),
    ...eventPartitionPrefixes(bot, partitions)
      .slice(1)
      .map((prefix, i) => ({ queue: QUEUES.events, prefix, partition: i + 1 })),
  ];
}

/**
 * The queues a gateway writes: the interactions', then each event partition's, in partition
 * order (the part of `botQueues` that is not only the workers').
 */
export function forwardedQueues(bot: BotRef, partitions: number): BotQueue[] {
  return botQueues(bot, partitions).filter(
    (q) => q.queue === QUEUES.interactions || q.queue === QUEUES.events,
  );
}

/**
 * Dispatches of one key run in order: the guild's, else the channel's (direct messages). The key
 * also picks the partition, so a guild's events stay in one queue, in order.
 */
export function orderKey(d: Pick<DispatchJob, 't' | 'd'>): string {
  const p = (d.d ?? {}) as { guild_id?: unknown; channel_id?: unknown; id?: unknown };
  if (typeof p.guild_id === 'string') return `guild:${p.guild_id}`;
  if (d.t.startsWith('GUILD_') && typeof p.id === 'string') return `guild:${p.id}`;
  if (typeof p.channel_id === 'string') return `channel:${p.channel_id}`;
  return 'other';
}

/**
 * The partition of a dispatch among `count`: FNV-1a of its order key (guild, else channel, else
 * partition of `other`), so the same dispatch lands in the same partition whichever gateway,
 * generation or replay forwards it, as long as the count does not change. A contract kept in
 * Redis (claims live in the partition's slot): neither this nor `orderKey` may change, or pods
 * of two images with one count would queue a guild in two partitions and run its dispatches
 * twice (tests/gateway/event-partitions.test.ts pins values).
 */
export function eventPartitionOf(d: Pick<DispatchJob, 't' | 'd'>, count: number): number {
  if (count <= 1) return 0;
  const key = orderKey(d);
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % count;
}

/** Other per-bot keys (sessions, cooldowns, the worker modules' own keys). */
export function botKey(bot: BotRef, ...parts: (string | number)[]): string {
  return partitionKey(bot, 0, ...parts);
}

/** A key in event partition `partition`'s slot (partition 0's is the bot's: `botKey`). */
export function partitionKey(bot: BotRef, partition: number, ...parts: (string | number)[]): string {
  return [eventPartitionPrefix(bot, partition), ...parts].join(':');
}

/**
 * The prefix of the budgets Discord counts per application rather than per DiscordBot: the
 * identify buckets (`max_concurrency`) and the REST limits (global and per route). Two
 * DiscordBots running one token share them. The operator passes the id (SHARDWARDEN_APPLICATION_ID);
 * a process started without it counts its budgets as the bot's own.
 */
export function discordBudgetPrefix(bot: BotRef, applicationId: string | undefined): string {
  return applicationId ? taggedPrefix(`app:${applicationId}`) : queuePrefix(bot);
}

/**
 * Where bots kept their keys before keys carried the namespace. Workers drain its queues after
 * an upgrade (bot/worker/processing/legacy-queues.ts) and gateways resume its sessions
 * (RedisSessionStore); nothing writes there any more.
 */
export function legacyQueuePrefix(name: string): string {
  return taggedPrefix(name);
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

/** A dispatch in a batch: with its de-duplication key (bot/gateway/forwarding/dedup-key.ts). */
export interface BatchedDispatch extends DispatchJob {
  key: string;
}

/** What a job of the batched events queue carries when its dispatches are inline. */
export interface DispatchBatchJob {
  dispatches: BatchedDispatch[];
}

/**
 * What a job of the batched events queue carries when its dispatches are a body beside it: the
 * body's key (a plain string, the JSON of the dispatches, in the partition's slot), how many
 * dispatches it holds and when the first was received. BullMQ's scripts copy a job's data into
 * Lua and out again (add, take): about 2.4 µs of Redis CPU per 0.79 KB dispatch against 0.9 as a
 * plain SET and GET (docs/benchmarks.md), so the body stays out of them.
 */
export interface DispatchBatchRef {
  body: string;
  size: number;
  receivedAt: number;
}

/**
 * How long a batch body outlives its job's enqueue at most. Completed jobs delete theirs at
 * once and failed ones take their dispatches inline (bot/worker/processing/worker-runtime.ts);
 * the expiry is for what a crash leaves behind, and longer than failed jobs are kept,
 * so a failed job whose body is still referenced can be retried for as long as it is kept.
 */
export const BATCH_BODY_TTL_SECONDS = 2 * KEEP_FAILED_SECONDS;

/** A batch body's key: under the prefix of the partition whose queue holds its job (same slot). */
export function batchBodyKey(prefix: string, id: string): string {
  return `${prefix}:batch-body:${id}`;
}

/**
 * Set by the workers' look at `CLIENT LIST` (bot/worker/processing/claim-format.ts), under the
 * bot's prefix, while it finds no consumer of the events queues that reads only inline batches;
 * gateways write batch bodies only while it exists (bot/gateway/forwarding/batch-format.ts).
 */
export function batchBodiesFlagKey(botPrefix: string): string {
  return `${botPrefix}:batch-bodies`;
}

/**
 * The BullMQ worker name of the consumers of the batched events queue: BullMQ puts it in their
 * connection's client name, which is how the workers' look tells whether every consumer reads
 * batch bodies and whether any still needs per-key claims (bot/worker/processing/claim-format.ts).
 */
export const BATCH_CONSUMERS = {
  /** This release's. */
  name: 'batch-bodies',
  /** The release before: bucketed claims, dispatches inline only. (Earlier ones are unnamed.) */
  inlineOnly: ['bucketed-claims'],
} as const;

/** The client name BullMQ gives a consumer of `queue` under `prefix` (unnamed: `name` undefined). */
export function consumerClientName(prefix: string, queue: QueueName, name?: string): string {
  const base = `${prefix}:${Buffer.from(queue).toString('base64')}`;
  return name === undefined ? base : `${base}:w:${name}`;
}

/** The name of every job of the batched events queue. */
export const BATCH_JOB_NAME = 'batch';

/**
 * How long a dispatch stays known as processed (its claim key, and the completed interaction
 * jobs whose ids de-duplicate interactions): a replay or a second generation's copy within
 * this window is skipped.
 */
export const DEDUP_WINDOW_SECONDS = 3600;
