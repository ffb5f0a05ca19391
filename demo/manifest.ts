// The demo bot as YAML for `kubectl apply`: its Secrets point at the local Redis, Postgres and
// the simulator's token, spec.chain at anvil. Short windows so the scenario fits in minutes.
import { stringify } from 'yaml';

export const DEMO_NAMESPACE = 'shardwarden-demo';
export const DEMO_BOT = 'demo-bot';

export interface DemoBotInput {
  token: string;
  redisUrl: string;
  databaseUrl: string;
  rpcUrl: string;
  guildsPerShard: number;
  scaleDownSeconds: number;
  /** The bot image: the demo bot image on a real node; on kwok never pulled (the pod runner runs dist/). */
  image: string;
}

export function demoBotManifest(input: DemoBotInput): string {
  const secret = (name: string, key: string, value: string) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `${DEMO_BOT}-${name}`, namespace: DEMO_NAMESPACE },
    type: 'Opaque',
    stringData: { [key]: value },
  });
  const bot = {
    apiVersion: 'shardwarden.io/v1alpha1',
    kind: 'DiscordBot',
    metadata: { name: DEMO_BOT, namespace: DEMO_NAMESPACE },
    spec: {
      image: input.image,
      // Imported onto the node: no registry is reachable.
      imagePullPolicy: 'IfNotPresent',
      tokenSecretRef: { name: `${DEMO_BOT}-discord`, key: 'token' },
      redis: { urlSecretRef: { name: `${DEMO_BOT}-redis`, key: 'url' } },
      database: { urlSecretRef: { name: `${DEMO_BOT}-database`, key: 'url' } },
      chain: { rpcUrls: [input.rpcUrl] },
      intents: ['Guilds', 'GuildMessages'],
      events: ['INTERACTION_CREATE', 'MESSAGE_CREATE'],
      sharding: {
        mode: 'Auto',
        guildsPerShard: input.guildsPerShard,
        shardsPerPod: 4,
        clustersPerPod: 1,
        refreshInterval: '10s',
        reshardStrategy: 'BlueGreen',
      },
      worker: {
        autoscaler: 'Builtin',
        minReplicas: 1,
        maxReplicas: 4,
        // Jobs: a job of events is a batch of up to 100 (the gateway's SHARDWARDEN_BATCH_SIZE).
        targetJobsPerReplica: 5,
        scaleDownStabilizationSeconds: input.scaleDownSeconds,
        concurrency: 10,
        terminationGracePeriodSeconds: 15,
      },
    },
  };
  return [
    secret('discord', 'token', input.token),
    secret('redis', 'url', input.redisUrl),
    secret('database', 'url', input.databaseUrl),
    bot,
  ]
    .map((doc) => stringify(doc))
    .join('---\n');
}
