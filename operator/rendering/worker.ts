// The worker Deployment (the Brain) and its Services: a headless one for metrics, and the public
// one only for bots that publish their public routes (worker.publicUrl).
import { ENV, POD_HTTP_PORT, POD_PUBLIC_HTTP_PORT } from '../../bot/runtime-contract.js';
import type { DiscordBot } from '../api/v1alpha1/types.js';
import { SECRETS_CHECKSUM_ANNOTATION, commonLabels, objectMeta, selectorLabels } from './labels.js';
import {
  baseEnv,
  containerSecurityContext,
  httpPort,
  podPlacement,
  podSecurityContext,
  probes,
  secretEnv,
  tmpMount,
  tmpVolume,
  type PodRuntime,
} from './pods.js';

export interface WorkerRenderInput extends PodRuntime {
  bot: DiscordBot;
  secretsChecksum: string;
  /** Replicas to write; undefined leaves them to someone else (KEDA, or the user). */
  replicas?: number;
}

const publicPort = { name: 'public', containerPort: POD_PUBLIC_HTTP_PORT, protocol: 'TCP' };

export const workerName = (bot: DiscordBot) => `${bot.metadata.name}-worker`;

/** The worker's SIGTERM budget for in-flight jobs (bot/worker/config.ts reads it). */
export const WORKER_SHUTDOWN_TIMEOUT_ENV = ENV.workerShutdownTimeoutMs;

/**
 * The worker waits for its jobs a margin less than the pod's grace period, so it closes its
 * connections itself before the kubelet's SIGKILL: 10 s, or a sixth of shorter periods.
 */
export function workerShutdownTimeoutMs(gracePeriodSeconds: number): number {
  return gracePeriodSeconds * 1000 - Math.min(10_000, Math.ceil((gracePeriodSeconds * 1000) / 6));
}

export function renderWorkerDeployment(input: WorkerRenderInput) {
  const { bot, secretsChecksum, replicas } = input;
  const runtime: PodRuntime = input;
  const w = bot.spec.worker;
  const tpl = w.podTemplate ?? {};
  const env = [
    ...baseEnv(bot, runtime),
    { name: ENV.workerConcurrency, value: String(w.concurrency) },
    bot.spec.chain?.rpcUrlsSecretRef
      ? secretEnv(ENV.chainRpcUrls, bot.spec.chain.rpcUrlsSecretRef)
      : { name: ENV.chainRpcUrls, value: (bot.spec.chain?.rpcUrls ?? []).join(',') },
    ...(bot.spec.database
      ? [secretEnv(ENV.databaseUrl, bot.spec.database.urlSecretRef), { name: ENV.migrations, value: 'skip' }]
      : []),
    ...(w.publicUrl ? [{ name: ENV.publicUrl, value: w.publicUrl }] : []),
    {
      name: WORKER_SHUTDOWN_TIMEOUT_ENV,
      value: String(workerShutdownTimeoutMs(w.terminationGracePeriodSeconds)),
    },
  ];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: objectMeta(bot, workerName(bot), 'worker'),
    spec: {
      // Omitted (not 0) when another autoscaler owns it, so this field manager never fights it.
      ...(replicas === undefined ? {} : { replicas }),
      selector: { matchLabels: selectorLabels(bot, 'worker') },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: '25%' } },
      template: {
        metadata: {
          labels: { ...tpl.labels, ...commonLabels(bot, 'worker') },
          annotations: { ...tpl.annotations, [SECRETS_CHECKSUM_ANNOTATION]: secretsChecksum },
        },
        spec: {
          securityContext: podSecurityContext,
          ...podPlacement(tpl, selectorLabels(bot, 'worker')),
          automountServiceAccountToken: false,
          // Long enough for the longest job to finish after SIGTERM (scale-down, rollout).
          terminationGracePeriodSeconds: w.terminationGracePeriodSeconds,
          // Migrations before the worker starts, on a direct connection when one is given (the
          // runner's advisory lock and lock_timeout need a session, which a transaction-mode
          // pooler does not keep). Idempotent: concurrent pods wait for the lock, then find nothing.
          ...(bot.spec.database
            ? {
                initContainers: [
                  {
                    name: 'migrate',
                    image: bot.spec.image,
                    imagePullPolicy: bot.spec.imagePullPolicy,
                    args: ['migrate'],
                    env: [
                      secretEnv(
                        ENV.databaseUrl,
                        bot.spec.database.migrationUrlSecretRef ?? bot.spec.database.urlSecretRef,
                      ),
                    ],
                    resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } },
                    securityContext: containerSecurityContext,
                    volumeMounts: [tmpMount],
                  },
                ],
              }
            : {}),
          containers: [
            {
              name: 'worker',
              image: bot.spec.image,
              imagePullPolicy: bot.spec.imagePullPolicy,
              args: ['worker'],
              env,
              ports: [httpPort, publicPort],
              ...probes,
              ...(w.resources ? { resources: w.resources } : {}),
              securityContext: containerSecurityContext,
              volumeMounts: [tmpMount],
            },
          ],
          volumes: [tmpVolume],
        },
      },
    },
  };
}

const workerMetricsServiceName = (bot: DiscordBot) => `${workerName(bot)}-metrics`;
export const workerPublicServiceName = (bot: DiscordBot) => `${workerName(bot)}-public`;

/**
 * Headless: Prometheus scrapes the pods (PodMonitor) and DNS lists them, so no virtual IP is
 * spent on it (a cluster's service range is finite: the test control plane's holds 254).
 */
export function renderWorkerMetricsService(bot: DiscordBot) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: objectMeta(bot, workerMetricsServiceName(bot), 'worker', { 'shardwarden.io/metrics': 'true' }),
    spec: {
      clusterIP: 'None',
      selector: selectorLabels(bot, 'worker'),
      ports: [{ name: 'http', port: POD_HTTP_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/**
 * The workers' public routes (wallet verification), for the user's Ingress or Gateway: rendered
 * only when worker.publicUrl says where members reach them.
 */
export function renderWorkerPublicService(bot: DiscordBot) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: objectMeta(bot, workerPublicServiceName(bot), 'worker'),
    spec: {
      selector: selectorLabels(bot, 'worker'),
      ports: [{ name: 'public', port: 80, targetPort: 'public', protocol: 'TCP' }],
    },
  };
}
