// Worker processes (the real entrypoint, as a pod runs it) beside a real gateway process, the
// simulator and Redis.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, makeTempDir, waitUntil, type ManagedProcess } from '../../testenv/index.js';
import { loggedPort, startShardwarden } from '../support/built-entrypoint.js';
import type { DiscordSimulator, InteractionSpec } from '../../discord-simulator/index.js';
import { BOT, gatewayEnv, startGateway, waitReady, type GatewayProcess } from '../gateway/harness.js';

/** The example handler module, as a bot author's image would name it. */
export const EXAMPLE_MODULE = fileURLToPath(
  new URL('../../dist/examples/custom-handlers/index.js', import.meta.url),
);

export interface WorkerProcess {
  proc: ManagedProcess;
  port: number;
  publicUrl: string;
  metrics(): Promise<string>;
  ready(): Promise<boolean>;
}

export async function workerEnv(
  sim: DiscordSimulator,
  redisUrl: string,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const publicPort = await freePort();
  return {
    SHARDWARDEN_BOT_NAME: BOT,
    SHARDWARDEN_WORKER_CONCURRENCY: '10',
    SHARDWARDEN_HTTP_PORT: '0',
    SHARDWARDEN_PUBLIC_HTTP_PORT: String(publicPort),
    SHARDWARDEN_PUBLIC_URL: `http://127.0.0.1:${publicPort}`,
    DISCORD_TOKEN: sim.token,
    DISCORD_API_URL: sim.apiUrl,
    REDIS_URL: redisUrl,
    ...extra,
  };
}

const logDir = makeTempDir('worker-logs');
let counter = 0;

export async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  counter += 1;
  const proc = startShardwarden(
    `worker-${counter}`,
    ['worker'],
    env,
    join(logDir.path, `worker-${counter}.log`),
  );
  const port = await loggedPort(proc);
  const w: WorkerProcess = {
    proc,
    port,
    publicUrl: env.SHARDWARDEN_PUBLIC_URL!,
    metrics: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    ready: async () =>
      (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
  };
  await waitUntil(`${proc.name} /readyz`, () => w.ready(), {
    process: proc,
    timeoutMs: 30_000,
    intervalMs: 100,
  });
  return w;
}

/** One gateway process holding the bot's only shard, READY. */
export async function startOneShardGateway(sim: DiscordSimulator, redisUrl: string): Promise<GatewayProcess> {
  const gateway = await startGateway(
    gatewayEnv(sim, redisUrl, 0, {
      SHARDWARDEN_TOTAL_SHARDS: '1',
      SHARDWARDEN_SHARDS_PER_POD: '1',
      SHARDWARDEN_CLUSTERS_PER_POD: '1',
    }),
  );
  await waitReady(gateway);
  return gateway;
}

/**
 * Sends a slash command; resolves with how long the first response took and the text the user
 * finally sees (the edited reply when the first response was a deferral).
 */
export async function slashCommand(
  sim: DiscordSimulator,
  spec: InteractionSpec,
): Promise<{ firstResponseMs: number; text: string }> {
  const text = (data: unknown) => (data as { content?: string } | undefined)?.content ?? '';
  const inj = sim.injectInteraction(spec);
  const first = await inj.response;
  if (first.type !== 5) return { firstResponseMs: first.latencyMs, text: text(first.data) };
  let final = '';
  await waitUntil(
    `/${spec.command} to be answered`,
    async () => {
      const edit = sim.recorder.interactionResponses.find(
        (r) => r.interactionId === inj.id && r.kind === 'edit-original',
      );
      final = text(edit?.data);
      return edit !== undefined;
    },
    { timeoutMs: 20_000 },
  );
  return { firstResponseMs: first.latencyMs, text: final };
}

/**
 * A MESSAGE_CREATE job as a gateway of a release before batching added it (`d.id` = `i`, the job
 * id its de-duplication key), for queues filled by hand.
 */
export function messageJob(i: number) {
  return {
    name: 'MESSAGE_CREATE',
    opts: { jobId: `MESSAGE_CREATE-${i}` },
    data: {
      t: 'MESSAGE_CREATE',
      d: { id: String(i) },
      shardId: 0,
      seq: i,
      receivedAt: Date.now(),
      generation: 1,
    },
  };
}
