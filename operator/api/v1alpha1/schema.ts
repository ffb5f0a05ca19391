// The DiscordBot API: the single source of truth. `npm run generate` writes the CRD YAML in
// crds/ and the TypeScript types beside this file from it; a test fails when either is stale.
export const GROUP = 'shardwarden.io';
export const VERSION = 'v1alpha1';
export const KIND = 'DiscordBot';
export const PLURAL = 'discordbots';

import { DISPATCH_NAMES } from '../../../bot/gateway/discord-gateway-names.js';
import { EVENT_PARTITIONS } from '../../../bot/queues/queue-names.js';

export const INTENT_NAMES = [
  'Guilds',
  'GuildMembers',
  'GuildModeration',
  'GuildExpressions',
  'GuildIntegrations',
  'GuildWebhooks',
  'GuildInvites',
  'GuildVoiceStates',
  'GuildPresences',
  'GuildMessages',
  'GuildMessageReactions',
  'GuildMessageTyping',
  'DirectMessages',
  'DirectMessageReactions',
  'DirectMessageTyping',
  'MessageContent',
  'GuildScheduledEvents',
  'AutoModerationConfiguration',
  'AutoModerationExecution',
  'GuildMessagePolls',
  'DirectMessagePolls',
] as const;

/** OpenAPI v3 as the apiserver reads it (client-node's V1JSONSchemaProps renames `default` and `enum`). */
export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema;
  enum?: string[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  'x-kubernetes-validations'?: {
    rule: string;
    message: string;
    fieldPath?: string;
    reason?: string;
    optionalOldSelf?: boolean;
  }[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  anyOf?: Schema[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
}

const DNS_LABEL = '^[a-z]([-a-z0-9]*[a-z0-9])?$';
/**
 * The longest DiscordBot name. A StatefulSet's pods carry the label controller-revision-hash
 * = <StatefulSet name>-<hash of up to 10 characters>, at most 63 characters, so the gateway
 * StatefulSet <name>-gateway-g<generation> may have 52: 38 leaves room for generation 9999.
 */
export const MAX_NAME_LENGTH = 38;
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const DURATION = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

const str = (description: string, extra: Partial<Schema> = {}): Schema => ({
  type: 'string',
  description,
  ...extra,
});
const int = (description: string, minimum: number, maximum: number, def?: number): Schema => ({
  type: 'integer',
  description,
  minimum,
  maximum,
  ...(def === undefined ? {} : { default: def }),
});
const obj = (
  description: string,
  properties: Record<string, Schema>,
  extra: Partial<Schema> = {},
): Schema => ({
  type: 'object',
  description,
  properties,
  ...extra,
});
const freeform = (description: string): Schema => ({
  type: 'object',
  description,
  'x-kubernetes-preserve-unknown-fields': true,
});

/**
 * An object whose default is made of its fields' defaults. (Defaulting `{}` is not enough:
 * the apiserver checks CEL rules against the default literally, without nested defaults.)
 */
const defaultedObj = (
  description: string,
  properties: Record<string, Schema>,
  extra: Partial<Schema> = {},
): Schema => {
  const defaults = Object.fromEntries(
    Object.entries(properties)
      .filter(([, p]) => p.default !== undefined)
      .map(([k, p]) => [k, p.default]),
  );
  return obj(description, properties, { ...extra, default: defaults });
};

const secretKeyRef = (what: string, defaultKey: string): Schema =>
  obj(
    `The Secret (in the bot's namespace) and key that hold ${what}.`,
    {
      name: str('Name of the Secret.', { minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN }),
      key: str(`Key in the Secret's data.`, {
        minLength: 1,
        maxLength: 253,
        pattern: '^[-._a-zA-Z0-9]+$',
        default: defaultKey,
      }),
    },
    { required: ['name'] },
  );

/** Extra pod settings, the same for gateway and worker pods. */
const podTemplate = (component: 'gateway' | 'worker'): Schema =>
  obj(`Extra settings for the ${component} pods.`, {
    labels: {
      type: 'object',
      description: 'Extra pod labels.',
      additionalProperties: { type: 'string' },
    },
    annotations: {
      type: 'object',
      description: 'Extra pod annotations.',
      additionalProperties: { type: 'string' },
    },
    nodeSelector: {
      type: 'object',
      description: 'Node selector of the pods.',
      additionalProperties: { type: 'string' },
    },
    tolerations: {
      type: 'array',
      description: 'Tolerations of the pods, as in a Pod spec.',
      items: freeform('A toleration.'),
    },
    affinity: freeform('Affinity of the pods, as in a Pod spec.'),
    topologySpreadConstraints: {
      type: 'array',
      description:
        'Topology spread constraints of the pods, as in a Pod spec. Unset: the pods spread over nodes (kubernetes.io/hostname, maxSkew 1, ScheduleAnyway); an empty list turns spreading off.',
      items: freeform('A topology spread constraint.'),
    },
    priorityClassName: str('Priority class of the pods.'),
  });

/** Kubernetes' own quantity syntax, as controller-gen writes it for resource.Quantity. */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

const quantities = (description: string): Schema => ({
  type: 'object',
  description,
  additionalProperties: {
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: QUANTITY_PATTERN,
    'x-kubernetes-int-or-string': true,
  },
});

const resources = (what: string) =>
  obj(`Compute resources (requests and limits) of each ${what} container, as in a Pod's container spec.`, {
    limits: quantities('Most of each resource the container may use, e.g. {"memory": "512Mi"}.'),
    requests: quantities('Resources reserved for the container, e.g. {"cpu": "250m", "memory": "256Mi"}.'),
    claims: {
      type: 'array',
      description: 'Dynamic resource claims the container uses, by name (as in a Pod spec).',
      items: obj(
        'One claim.',
        { name: str('Name of a claim of the pod.'), request: str('A request of the claim.') },
        { required: ['name'] },
      ),
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    },
  });

export const specSchema: Schema = obj(
  'What the bot is and how it should run.',
  {
    image: str(
      "Container image of the bot: Shardwarden's runtime image, or one built on it that adds the bot's handlers.",
      {
        minLength: 1,
        maxLength: 512,
        pattern: '^\\S+$',
      },
    ),
    imagePullPolicy: str('Image pull policy of every container.', {
      enum: ['Always', 'IfNotPresent', 'Never'],
      default: 'IfNotPresent',
    }),
    tokenSecretRef: secretKeyRef('the Discord bot token', 'token'),
    intents: {
      type: 'array',
      description:
        'Gateway intents the shards identify with (discord.js GatewayIntentBits names). Least privilege: only Guilds by default.',
      items: { type: 'string', enum: [...INTENT_NAMES] },
      maxItems: INTENT_NAMES.length,
      'x-kubernetes-list-type': 'set',
      default: ['Guilds'],
    },
    events: {
      type: 'array',
      description:
        'Gateway dispatch types the gateway pods forward to the workers; every other dispatch is dropped at the door.',
      items: { type: 'string', enum: [...DISPATCH_NAMES] },
      maxItems: 64,
      'x-kubernetes-list-type': 'set',
      default: ['INTERACTION_CREATE', 'GUILD_CREATE', 'GUILD_DELETE'],
    },
    sharding: defaultedObj(
      'How many shards, and how they are spread over gateway pods.',
      {
        mode: str("Auto follows Discord's recommendation (GET /gateway/bot); Fixed uses `shards`.", {
          enum: ['Auto', 'Fixed'],
          default: 'Auto',
        }),
        shards: int('Total shard count in Fixed mode; must be 0 (unset) in Auto mode.', 0, 65536, 0),
        guildsPerShard: int(
          'Auto mode: guilds each shard should carry. Discord recommends about 1000; lower values give more shards and headroom. Discord refuses more than 2500 per shard.',
          100,
          2500,
          1000,
        ),
        shardsPerPod: int('Shards each gateway pod runs. The last pod may run fewer.', 1, 1024, 16),
        clustersPerPod: int(
          "Clusters per gateway pod; the pod's shards are split over them. 1 runs them in every pod's own process (about half the memory of a forked cluster and its primary; a crash or a start past its timeout then restarts the container, with the kubelet's back-off); more fork one Kurasuta cluster process each. At most shardsPerPod.",
          1,
          64,
          2,
        ),
        refreshInterval: str(
          "How often Discord's recommendation is read again (a Go duration, 10s to 24h).",
          {
            pattern: DURATION,
            default: '1h',
            'x-kubernetes-validations': [
              {
                rule: "duration(self) >= duration('10s') && duration(self) <= duration('24h')",
                message: 'refreshInterval must be between 10s and 24h',
              },
            ],
          },
        ),
        reshardStrategy: str(
          'What happens when the shard count changes: BlueGreen starts the new generation beside the old one and cuts over when it is ready; Recreate replaces it; Manual only reports the needed change.',
          {
            enum: ['BlueGreen', 'Recreate', 'Manual'],
            default: 'BlueGreen',
          },
        ),
        reshardTimeout: str(
          'How long a new gateway generation may take to become Ready before the reshard is rolled back to the old one (a Go duration, 5s to 24h); the next attempt waits as long again.',
          {
            pattern: DURATION,
            default: '10m',
            'x-kubernetes-validations': [
              {
                rule: "duration(self) >= duration('5s') && duration(self) <= duration('24h')",
                message: 'reshardTimeout must be between 5s and 24h',
              },
            ],
          },
        ),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: "self.mode != 'Fixed' || self.shards > 0",
            message: 'shards must be greater than 0 when mode is Fixed',
            fieldPath: '.shards',
          },
          {
            rule: "self.mode != 'Auto' || self.shards == 0",
            message: 'shards is only used in Fixed mode; leave it 0 (unset) in Auto mode',
            fieldPath: '.shards',
          },
          {
            rule: 'self.clustersPerPod <= self.shardsPerPod',
            message: 'clustersPerPod must not exceed shardsPerPod',
            fieldPath: '.clustersPerPod',
          },
        ],
      },
    ),
    gateway: obj(
      'The gateway pods (the Ear).',
      {
        resources: resources('gateway'),
        podTemplate: podTemplate('gateway'),
      },
      { default: {} },
    ),
    worker: defaultedObj(
      'The worker pods (the Brain).',
      {
        autoscaler: str(
          'Builtin scales from the BullMQ backlog; KEDA renders a ScaledObject instead; None leaves replicas to you.',
          {
            enum: ['Builtin', 'KEDA', 'None'],
            default: 'Builtin',
          },
        ),
        minReplicas: int('Fewest worker replicas.', 0, 1000, 1),
        maxReplicas: int('Most worker replicas.', 1, 1000, 20),
        targetJobsPerReplica: int(
          "Queued jobs (unit: BullMQ jobs waiting in the bot's queues; a batch of events is one job) each worker replica should have at most; the autoscaler aims at ceil(backlog / this).",
          1,
          1_000_000,
          5,
        ),
        targetBacklogPerReplica: int(
          'Deprecated and ignored (it counted jobs of one dispatch each): use targetJobsPerReplica. The operator warns while it is set.',
          1,
          1_000_000,
        ),
        scaleDownStabilizationSeconds: int(
          'Demand must stay lower for this long before workers are removed.',
          0,
          3600,
          300,
        ),
        concurrency: int(
          'Event handlers each worker process runs at once (the batches of events it takes share them).',
          1,
          1000,
          50,
        ),
        terminationGracePeriodSeconds: int(
          'Seconds a worker pod gets after SIGTERM (scale-down, rollout) to finish its jobs; make it longer than the longest job. The worker stops taking jobs at once and waits up to this minus a margin.',
          10,
          3600,
          60,
        ),
        publicUrl: str(
          "URL at which members reach the workers' public routes (the wallet verification page linked from /verify). Setting it creates the Service <name>-worker-public (port 80) for your Ingress or Gateway to route here. Unset: no such Service, and links point at localhost.",
          { pattern: '^https?://\\S+$', maxLength: 2048 },
        ),
        resources: resources('worker'),
        podTemplate: podTemplate('worker'),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: 'self.maxReplicas >= self.minReplicas',
            message: 'maxReplicas must be greater than or equal to minReplicas',
            fieldPath: '.maxReplicas',
          },
        ],
      },
    ),
    redis: obj(
      'Redis for the queues, identify throttling, sessions and state.',
      {
        urlSecretRef: secretKeyRef(
          'the Redis URL (redis://, rediss://, or redis+cluster://host:port,... for a Redis Cluster)',
          'url',
        ),
        eventPartitions: int(
          "Partitions of the bot's event queue, each under its own Redis Cluster hash tag, so a Redis Cluster spreads the bot's events over its masters (a guild's events stay in one partition, in order). 1 keeps every key in one slot; on a Redis Cluster, a few per master (docs/install.md). Changing it restarts the gateway and worker pods; see docs/workers.md for what a change guarantees.",
          1,
          EVENT_PARTITIONS.max,
          EVENT_PARTITIONS.default,
        ),
      },
      { required: ['urlSecretRef'] },
    ),
    database: obj(
      'Postgres for the workers (optional). Migrations run in an init container of each worker pod, under an advisory lock.',
      {
        urlSecretRef: secretKeyRef(
          'the Postgres URL the workers use (may go through PgBouncer in transaction mode)',
          'url',
        ),
        migrationUrlSecretRef: secretKeyRef(
          'a direct Postgres URL (not through a transaction-mode pooler) of a role that owns the schema, for migrations; default: urlSecretRef',
          'url',
        ),
      },
      { required: ['urlSecretRef'] },
    ),
    chain: obj(
      'EVM JSON-RPC endpoints for the workers, tried in order with failover.',
      {
        rpcUrls: {
          type: 'array',
          description: 'JSON-RPC URLs (http or https) without credentials: the spec is not secret.',
          items: { type: 'string', pattern: '^https?://\\S+$', maxLength: 2048 },
          maxItems: 10,
        },
        rpcUrlsSecretRef: secretKeyRef(
          'the JSON-RPC URLs, comma-separated, for endpoints whose URL carries an API key (instead of rpcUrls)',
          'urls',
        ),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: '!(has(self.rpcUrls) && size(self.rpcUrls) > 0 && has(self.rpcUrlsSecretRef))',
            message: 'set either rpcUrls or rpcUrlsSecretRef, not both',
          },
        ],
      },
    ),
  },
  { required: ['image', 'tokenSecretRef', 'redis'] },
);

const condition: Schema = obj(
  'A condition in the standard Kubernetes shape.',
  {
    type: str('Ready, Progressing, Degraded or WorkersScaled.'),
    status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
    observedGeneration: {
      type: 'integer',
      description: 'The .metadata.generation the condition was set for.',
    },
    lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
    reason: str('CamelCase reason.'),
    message: str('What happened, for a human.'),
  },
  { required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'] },
);

export const statusSchema: Schema = obj('What the operator observed and did.', {
  observedGeneration: { type: 'integer', description: 'The .metadata.generation the status describes.' },
  conditions: {
    type: 'array',
    description: 'Ready, Progressing, Degraded, and WorkersScaled while an autoscaler is set.',
    items: condition,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  },
  shards: { type: 'integer', description: 'Total shards of the active plan.' },
  recommendedShards: { type: 'integer', description: 'Shards Discord recommends (GET /gateway/bot).' },
  maxConcurrency: {
    type: 'integer',
    description: 'Identify buckets per 5 s (session_start_limit.max_concurrency).',
  },
  sessionStartLimit: obj("Discord's session start budget at the last read.", {
    total: { type: 'integer', description: 'Session starts allowed per reset period.' },
    remaining: { type: 'integer', description: 'Session starts left.' },
    resetAfter: {
      type: 'integer',
      description: 'Milliseconds until the budget resets, at the time of the read.',
    },
  }),
  lastDiscordSync: str('When GET /gateway/bot was last read successfully.', { format: 'date-time' }),
  plan: obj('The shard plan the active gateway generation runs.', {
    shards: { type: 'integer', description: 'Total shards.' },
    shardsPerPod: { type: 'integer', description: 'Shards per gateway pod.' },
    pods: { type: 'integer', description: 'Gateway pods.' },
    clustersPerPod: { type: 'integer', description: 'Cluster processes per pod.' },
    maxConcurrency: { type: 'integer', description: 'Identify buckets.' },
  }),
  gateway: obj('The gateway StatefulSet of the active generation.', {
    generation: {
      type: 'integer',
      description:
        'The active gateway generation (increases with every reshard); its StatefulSet is <bot>-gateway for 1, <bot>-gateway-g<N> after.',
    },
    pods: { type: 'integer', description: 'Gateway pods wanted.' },
    readyPods: { type: 'integer', description: 'Gateway pods Ready.' },
  }),
  reshard: obj(
    'The last or current change of the shard count (a new gateway generation); absent until the first one.',
    {
      phase: str(
        'WaitingForSessionBudget, StartingNewGeneration, Complete, RolledBack or ManualActionRequired.',
        {
          enum: [
            'WaitingForSessionBudget',
            'StartingNewGeneration',
            'Complete',
            'RolledBack',
            'ManualActionRequired',
          ],
        },
      ),
      fromGeneration: { type: 'integer', description: 'The gateway generation serving before the reshard.' },
      toGeneration: { type: 'integer', description: 'The gateway generation the reshard brings up.' },
      fromShards: { type: 'integer', description: 'Shard count of the old generation.' },
      toShards: { type: 'integer', description: 'Shard count of the new generation.' },
      startedAt: str('When the new generation was started.', { format: 'date-time' }),
      phaseSince: str('When the current phase began.', { format: 'date-time' }),
      message: str('What is happening, for a human.'),
    },
    {
      required: [
        'phase',
        'fromGeneration',
        'toGeneration',
        'fromShards',
        'toShards',
        'phaseSince',
        'message',
      ],
    },
  ),
  workers: obj('The worker Deployment.', {
    replicas: { type: 'integer', description: 'Worker replicas.' },
    readyReplicas: { type: 'integer', description: 'Worker replicas Ready.' },
    backlog: { type: 'integer', description: "Jobs waiting in the bot's queues at the last look." },
    desiredReplicas: {
      type: 'integer',
      description: 'Replicas the Builtin autoscaler wants now (after the scale-down window).',
    },
    autoscaler: str(
      'The autoscaler in effect (what the operator last set up); a ScaledObject is removed when this leaves KEDA.',
      { enum: ['Builtin', 'KEDA', 'None'] },
    ),
    lastScaleTime: str('When the Builtin autoscaler last changed the replicas.', { format: 'date-time' }),
  }),
});

export const rootSchema: Schema = {
  type: 'object',
  description:
    'A Discord bot run by Shardwarden: sharded gateway pods that forward events to BullMQ, and workers that handle them.',
  required: ['spec'],
  properties: {
    apiVersion: str('APIVersion of this object.'),
    kind: str('Kind of this object.'),
    metadata: { type: 'object' },
    spec: specSchema,
    status: statusSchema,
  },
  // Names are immutable: checked when a bot is created (oldSelf has no value), so a bot created
  // under the older 40-character rule can still be edited and have its status written.
  'x-kubernetes-validations': [
    {
      rule: `oldSelf.hasValue() || self.metadata.name.matches('${DNS_LABEL}')`,
      optionalOldSelf: true,
      message:
        "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter and ending with a letter or digit): it names the bot's Services",
    },
    {
      rule: `oldSelf.hasValue() || self.metadata.name.size() <= ${MAX_NAME_LENGTH}`,
      optionalOldSelf: true,
      message: `metadata.name must be at most ${MAX_NAME_LENGTH} characters: it prefixes the gateway StatefulSet <name>-gateway-g<generation>, whose pods carry a controller-revision-hash label of that name plus 11 characters (at most 63), and the Services, e.g. <name>-worker-metrics (at most 63)`,
    },
  ],
};

export const printerColumns = [
  { name: 'Shards', type: 'integer', jsonPath: '.status.shards', description: 'Total shards.' },
  { name: 'Pods', type: 'integer', jsonPath: '.status.gateway.pods', description: 'Gateway pods wanted.' },
  {
    name: 'Ready',
    type: 'integer',
    jsonPath: '.status.gateway.readyPods',
    description: 'Gateway pods Ready.',
  },
  { name: 'Workers', type: 'integer', jsonPath: '.status.workers.replicas', description: 'Worker replicas.' },
  { name: 'Backlog', type: 'integer', jsonPath: '.status.workers.backlog', description: 'Jobs waiting.' },
  {
    name: 'Generation',
    type: 'integer',
    jsonPath: '.status.gateway.generation',
    description: 'Active gateway generation.',
    priority: 1,
  },
  {
    name: 'Reshard',
    type: 'string',
    jsonPath: '.status.reshard.phase',
    description: 'Phase of the last or current reshard.',
    priority: 1,
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

/** The CustomResourceDefinition object, as applied to a cluster. */
export function customResourceDefinition() {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        plural: PLURAL,
        singular: 'discordbot',
        kind: KIND,
        listKind: `${KIND}List`,
        shortNames: ['dbot'],
        categories: ['shardwarden'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: printerColumns,
          schema: { openAPIV3Schema: rootSchema },
        },
      ],
    },
  };
}
