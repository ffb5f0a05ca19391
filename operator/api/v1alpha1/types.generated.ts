// Generated from schema.ts by `npm run generate`; do not edit.

/** What the bot is and how it should run. */
export interface DiscordBotSpec {
  /** Container image of the bot: Shardwarden's runtime image, or one built on it that adds the bot's handlers. */
  image: string;
  /** Image pull policy of every container. */
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** The Secret (in the bot's namespace) and key that hold the Discord bot token. */
  tokenSecretRef: {
    /** Name of the Secret. */
    name: string;
    /** Key in the Secret's data. */
    key: string;
  };
  /** Gateway intents the shards identify with (discord.js GatewayIntentBits names). Least privilege: only Guilds by default. */
  intents: (
    | 'Guilds'
    | 'GuildMembers'
    | 'GuildModeration'
    | 'GuildExpressions'
    | 'GuildIntegrations'
    | 'GuildWebhooks'
    | 'GuildInvites'
    | 'GuildVoiceStates'
    | 'GuildPresences'
    | 'GuildMessages'
    | 'GuildMessageReactions'
    | 'GuildMessageTyping'
    | 'DirectMessages'
    | 'DirectMessageReactions'
    | 'DirectMessageTyping'
    | 'MessageContent'
    | 'GuildScheduledEvents'
    | 'AutoModerationConfiguration'
    | 'AutoModerationExecution'
    | 'GuildMessagePolls'
    | 'DirectMessagePolls'
  )[];
  /** Gateway dispatch types the gateway pods forward to the workers; every other dispatch is dropped at the door. */
  events: (
    | 'APPLICATION_COMMAND_PERMISSIONS_UPDATE'
    | 'AUTO_MODERATION_ACTION_EXECUTION'
    | 'AUTO_MODERATION_RULE_CREATE'
    | 'AUTO_MODERATION_RULE_DELETE'
    | 'AUTO_MODERATION_RULE_UPDATE'
    | 'CHANNEL_CREATE'
    | 'CHANNEL_DELETE'
    | 'CHANNEL_INFO'
    | 'CHANNEL_PINS_UPDATE'
    | 'CHANNEL_UPDATE'
    | 'ENTITLEMENT_CREATE'
    | 'ENTITLEMENT_DELETE'
    | 'ENTITLEMENT_UPDATE'
    | 'GUILD_AUDIT_LOG_ENTRY_CREATE'
    | 'GUILD_BAN_ADD'
    | 'GUILD_BAN_REMOVE'
    | 'GUILD_CREATE'
    | 'GUILD_DELETE'
    | 'GUILD_EMOJIS_UPDATE'
    | 'GUILD_INTEGRATIONS_UPDATE'
    | 'GUILD_MEMBERS_CHUNK'
    | 'GUILD_MEMBER_ADD'
    | 'GUILD_MEMBER_REMOVE'
    | 'GUILD_MEMBER_UPDATE'
    | 'GUILD_ROLE_CREATE'
    | 'GUILD_ROLE_DELETE'
    | 'GUILD_ROLE_UPDATE'
    | 'GUILD_SCHEDULED_EVENT_CREATE'
    | 'GUILD_SCHEDULED_EVENT_DELETE'
    | 'GUILD_SCHEDULED_EVENT_UPDATE'
    | 'GUILD_SCHEDULED_EVENT_USER_ADD'
    | 'GUILD_SCHEDULED_EVENT_USER_REMOVE'
    | 'GUILD_SOUNDBOARD_SOUNDS_UPDATE'
    | 'GUILD_SOUNDBOARD_SOUND_CREATE'
    | 'GUILD_SOUNDBOARD_SOUND_DELETE'
    | 'GUILD_SOUNDBOARD_SOUND_UPDATE'
    | 'GUILD_STICKERS_UPDATE'
    | 'GUILD_UPDATE'
    | 'INTEGRATION_CREATE'
    | 'INTEGRATION_DELETE'
    | 'INTEGRATION_UPDATE'
    | 'INTERACTION_CREATE'
    | 'INVITE_CREATE'
    | 'INVITE_DELETE'
    | 'MESSAGE_CREATE'
    | 'MESSAGE_DELETE'
    | 'MESSAGE_DELETE_BULK'
    | 'MESSAGE_POLL_VOTE_ADD'
    | 'MESSAGE_POLL_VOTE_REMOVE'
    | 'MESSAGE_REACTION_ADD'
    | 'MESSAGE_REACTION_REMOVE'
    | 'MESSAGE_REACTION_REMOVE_ALL'
    | 'MESSAGE_REACTION_REMOVE_EMOJI'
    | 'MESSAGE_UPDATE'
    | 'PRESENCE_UPDATE'
    | 'RATE_LIMITED'
    | 'READY'
    | 'RESUMED'
    | 'SOUNDBOARD_SOUNDS'
    | 'STAGE_INSTANCE_CREATE'
    | 'STAGE_INSTANCE_DELETE'
    | 'STAGE_INSTANCE_UPDATE'
    | 'SUBSCRIPTION_CREATE'
    | 'SUBSCRIPTION_DELETE'
    | 'SUBSCRIPTION_UPDATE'
    | 'THREAD_CREATE'
    | 'THREAD_DELETE'
    | 'THREAD_LIST_SYNC'
    | 'THREAD_MEMBERS_UPDATE'
    | 'THREAD_MEMBER_UPDATE'
    | 'THREAD_UPDATE'
    | 'TYPING_START'
    | 'USER_UPDATE'
    | 'VOICE_CHANNEL_EFFECT_SEND'
    | 'VOICE_CHANNEL_START_TIME_UPDATE'
    | 'VOICE_CHANNEL_STATUS_UPDATE'
    | 'VOICE_SERVER_UPDATE'
    | 'VOICE_STATE_UPDATE'
    | 'WEBHOOKS_UPDATE'
  )[];
  /** How many shards, and how they are spread over gateway pods. */
  sharding: {
    /** Auto follows Discord's recommendation (GET /gateway/bot); Fixed uses `shards`. */
    mode: 'Auto' | 'Fixed';
    /** Total shard count in Fixed mode; must be 0 (unset) in Auto mode. */
    shards: number;
    /** Auto mode: guilds each shard should carry. Discord recommends about 1000; lower values give more shards and headroom. Discord refuses more than 2500 per shard. */
    guildsPerShard: number;
    /** Shards each gateway pod runs. The last pod may run fewer. */
    shardsPerPod: number;
    /** Clusters per gateway pod; the pod's shards are split over them. 1 runs them in every pod's own process (about half the memory of a forked cluster and its primary; a crash or a start past its timeout then restarts the container, with the kubelet's back-off); more fork one Kurasuta cluster process each. At most shardsPerPod. */
    clustersPerPod: number;
    /** How often Discord's recommendation is read again (a Go duration, 10s to 24h). */
    refreshInterval: string;
    /** What happens when the shard count changes: BlueGreen starts the new generation beside the old one and cuts over when it is ready; Recreate replaces it; Manual only reports the needed change. */
    reshardStrategy: 'BlueGreen' | 'Recreate' | 'Manual';
    /** How long a new gateway generation may take to become Ready before the reshard is rolled back to the old one (a Go duration, 5s to 24h); the next attempt waits as long again. */
    reshardTimeout: string;
  };
  /** The gateway pods (the Ear). */
  gateway: {
    /** Compute resources (requests and limits) of each gateway container, as in a Pod's container spec. */
    resources?: {
      /** Most of each resource the container may use, e.g. {"memory": "512Mi"}. */
      limits?: Record<string, number | string>;
      /** Resources reserved for the container, e.g. {"cpu": "250m", "memory": "256Mi"}. */
      requests?: Record<string, number | string>;
      /** Dynamic resource claims the container uses, by name (as in a Pod spec). */
      claims?: {
        /** Name of a claim of the pod. */
        name: string;
        /** A request of the claim. */
        request?: string;
      }[];
    };
    /** Extra settings for the gateway pods. */
    podTemplate?: {
      /** Extra pod labels. */
      labels?: Record<string, string>;
      /** Extra pod annotations. */
      annotations?: Record<string, string>;
      /** Node selector of the pods. */
      nodeSelector?: Record<string, string>;
      /** Tolerations of the pods, as in a Pod spec. */
      tolerations?: Record<string, unknown>[];
      /** Affinity of the pods, as in a Pod spec. */
      affinity?: Record<string, unknown>;
      /** Topology spread constraints of the pods, as in a Pod spec. Unset: the pods spread over nodes (kubernetes.io/hostname, maxSkew 1, ScheduleAnyway); an empty list turns spreading off. */
      topologySpreadConstraints?: Record<string, unknown>[];
      /** Priority class of the pods. */
      priorityClassName?: string;
    };
  };
  /** The worker pods (the Brain). */
  worker: {
    /** Builtin scales from the BullMQ backlog; KEDA renders a ScaledObject instead; None leaves replicas to you. */
    autoscaler: 'Builtin' | 'KEDA' | 'None';
    /** Fewest worker replicas. */
    minReplicas: number;
    /** Most worker replicas. */
    maxReplicas: number;
    /** Queued jobs (unit: BullMQ jobs waiting in the bot's queues; a batch of events is one job) each worker replica should have at most; the autoscaler aims at ceil(backlog / this). */
    targetJobsPerReplica: number;
    /** Deprecated and ignored (it counted jobs of one dispatch each): use targetJobsPerReplica. The operator warns while it is set. */
    targetBacklogPerReplica?: number;
    /** Demand must stay lower for this long before workers are removed. */
    scaleDownStabilizationSeconds: number;
    /** Event handlers each worker process runs at once (the batches of events it takes share them). */
    concurrency: number;
    /** Seconds a worker pod gets after SIGTERM (scale-down, rollout) to finish its jobs; make it longer than the longest job. The worker stops taking jobs at once and waits up to this minus a margin. */
    terminationGracePeriodSeconds: number;
    /** URL at which members reach the workers' public routes (the wallet verification page linked from /verify). Setting it creates the Service <name>-worker-public (port 80) for your Ingress or Gateway to route here. Unset: no such Service, and links point at localhost. */
    publicUrl?: string;
    /** Compute resources (requests and limits) of each worker container, as in a Pod's container spec. */
    resources?: {
      /** Most of each resource the container may use, e.g. {"memory": "512Mi"}. */
      limits?: Record<string, number | string>;
      /** Resources reserved for the container, e.g. {"cpu": "250m", "memory": "256Mi"}. */
      requests?: Record<string, number | string>;
      /** Dynamic resource claims the container uses, by name (as in a Pod spec). */
      claims?: {
        /** Name of a claim of the pod. */
        name: string;
        /** A request of the claim. */
        request?: string;
      }[];
    };
    /** Extra settings for the worker pods. */
    podTemplate?: {
      /** Extra pod labels. */
      labels?: Record<string, string>;
      /** Extra pod annotations. */
      annotations?: Record<string, string>;
      /** Node selector of the pods. */
      nodeSelector?: Record<string, string>;
      /** Tolerations of the pods, as in a Pod spec. */
      tolerations?: Record<string, unknown>[];
      /** Affinity of the pods, as in a Pod spec. */
      affinity?: Record<string, unknown>;
      /** Topology spread constraints of the pods, as in a Pod spec. Unset: the pods spread over nodes (kubernetes.io/hostname, maxSkew 1, ScheduleAnyway); an empty list turns spreading off. */
      topologySpreadConstraints?: Record<string, unknown>[];
      /** Priority class of the pods. */
      priorityClassName?: string;
    };
  };
  /** Redis for the queues, identify throttling, sessions and state. */
  redis: {
    /** The Secret (in the bot's namespace) and key that hold the Redis URL (redis://, rediss://, or redis+cluster://host:port,... for a Redis Cluster). */
    urlSecretRef: {
      /** Name of the Secret. */
      name: string;
      /** Key in the Secret's data. */
      key: string;
    };
    /** Partitions of the bot's event queue, each under its own Redis Cluster hash tag, so a Redis Cluster spreads the bot's events over its masters (a guild's events stay in one partition, in order). 1 keeps every key in one slot; on a Redis Cluster, a few per master (docs/install.md). Changing it restarts the gateway and worker pods; see docs/workers.md for what a change guarantees. */
    eventPartitions: number;
  };
  /** Postgres for the workers (optional). Migrations run in an init container of each worker pod, under an advisory lock. */
  database?: {
    /** The Secret (in the bot's namespace) and key that hold the Postgres URL the workers use (may go through PgBouncer in transaction mode). */
    urlSecretRef: {
      /** Name of the Secret. */
      name: string;
      /** Key in the Secret's data. */
      key: string;
    };
    /** The Secret (in the bot's namespace) and key that hold a direct Postgres URL (not through a transaction-mode pooler) of a role that owns the schema, for migrations; default: urlSecretRef. */
    migrationUrlSecretRef?: {
      /** Name of the Secret. */
      name: string;
      /** Key in the Secret's data. */
      key: string;
    };
  };
  /** EVM JSON-RPC endpoints for the workers, tried in order with failover. */
  chain?: {
    /** JSON-RPC URLs (http or https) without credentials: the spec is not secret. */
    rpcUrls?: string[];
    /** The Secret (in the bot's namespace) and key that hold the JSON-RPC URLs, comma-separated, for endpoints whose URL carries an API key (instead of rpcUrls). */
    rpcUrlsSecretRef?: {
      /** Name of the Secret. */
      name: string;
      /** Key in the Secret's data. */
      key: string;
    };
  };
}

/** What the operator observed and did. */
export interface DiscordBotStatus {
  /** The .metadata.generation the status describes. */
  observedGeneration?: number;
  /** Ready, Progressing, Degraded, and WorkersScaled while an autoscaler is set. */
  conditions?: {
    /** Ready, Progressing, Degraded or WorkersScaled. */
    type: string;
    /** True, False or Unknown. */
    status: 'True' | 'False' | 'Unknown';
    /** The .metadata.generation the condition was set for. */
    observedGeneration?: number;
    /** When the status last changed. */
    lastTransitionTime: string;
    /** CamelCase reason. */
    reason: string;
    /** What happened, for a human. */
    message: string;
  }[];
  /** Total shards of the active plan. */
  shards?: number;
  /** Shards Discord recommends (GET /gateway/bot). */
  recommendedShards?: number;
  /** Identify buckets per 5 s (session_start_limit.max_concurrency). */
  maxConcurrency?: number;
  /** Discord's session start budget at the last read. */
  sessionStartLimit?: {
    /** Session starts allowed per reset period. */
    total?: number;
    /** Session starts left. */
    remaining?: number;
    /** Milliseconds until the budget resets, at the time of the read. */
    resetAfter?: number;
  };
  /** When GET /gateway/bot was last read successfully. */
  lastDiscordSync?: string;
  /** The shard plan the active gateway generation runs. */
  plan?: {
    /** Total shards. */
    shards?: number;
    /** Shards per gateway pod. */
    shardsPerPod?: number;
    /** Gateway pods. */
    pods?: number;
    /** Cluster processes per pod. */
    clustersPerPod?: number;
    /** Identify buckets. */
    maxConcurrency?: number;
  };
  /** The gateway StatefulSet of the active generation. */
  gateway?: {
    /** The active gateway generation (increases with every reshard); its StatefulSet is <bot>-gateway for 1, <bot>-gateway-g<N> after. */
    generation?: number;
    /** Gateway pods wanted. */
    pods?: number;
    /** Gateway pods Ready. */
    readyPods?: number;
  };
  /** The last or current change of the shard count (a new gateway generation); absent until the first one. */
  reshard?: {
    /** WaitingForSessionBudget, StartingNewGeneration, Complete, RolledBack or ManualActionRequired. */
    phase:
      | 'WaitingForSessionBudget'
      | 'StartingNewGeneration'
      | 'Complete'
      | 'RolledBack'
      | 'ManualActionRequired';
    /** The gateway generation serving before the reshard. */
    fromGeneration: number;
    /** The gateway generation the reshard brings up. */
    toGeneration: number;
    /** Shard count of the old generation. */
    fromShards: number;
    /** Shard count of the new generation. */
    toShards: number;
    /** When the new generation was started. */
    startedAt?: string;
    /** When the current phase began. */
    phaseSince: string;
    /** What is happening, for a human. */
    message: string;
  };
  /** The worker Deployment. */
  workers?: {
    /** Worker replicas. */
    replicas?: number;
    /** Worker replicas Ready. */
    readyReplicas?: number;
    /** Jobs waiting in the bot's queues at the last look. */
    backlog?: number;
    /** Replicas the Builtin autoscaler wants now (after the scale-down window). */
    desiredReplicas?: number;
    /** The autoscaler in effect (what the operator last set up); a ScaledObject is removed when this leaves KEDA. */
    autoscaler?: 'Builtin' | 'KEDA' | 'None';
    /** When the Builtin autoscaler last changed the replicas. */
    lastScaleTime?: string;
  };
}
