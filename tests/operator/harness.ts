// Shared set-up for operator tests: a real control plane (with the garbage collector and, when
// asked, kwok nodes so pods become Ready), the DiscordBot CRD, and the Discord simulator.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../bot/observability/logger.js';
import { CRD_PATH } from '../../operator/api/codegen.js';
import { parseConfig } from '../../operator/config/config.js';
import { DiscordBotController } from '../../operator/controller/discordbot-controller.js';
import { OperatorMetrics } from '../../operator/metrics/operator-metrics.js';
import type { DiscordBot } from '../../operator/api/v1alpha1/types.js';
import { DiscordSimulator, type SimulatorOptions } from '../../discord-simulator/index.js';
import { startControlPlane, waitUntil, type ControlPlane } from '../../testenv/index.js';

export interface Harness {
  cp: ControlPlane;
  sim: DiscordSimulator;
  kc: KubeConfig;
  stop(): Promise<void>;
}

export async function startHarness(
  options: {
    kwokNodes?: number;
    simulator?: SimulatorOptions;
    /** The controller-manager (garbage collector, workload controllers); default true. */
    controllers?: boolean;
    admissionPlugins?: string[];
  } = {},
): Promise<Harness> {
  const cp = await startControlPlane({
    controllers: options.controllers ?? true,
    kwokNodes: options.kwokNodes ?? 0,
    admissionPlugins: options.admissionPlugins,
  });
  await cp.applyCrds(CRD_PATH);
  const sim = await DiscordSimulator.start(options.simulator ?? {});
  return {
    cp,
    sim,
    kc: cp.kubeConfig(),
    async stop() {
      await sim.stop();
      await cp.stop();
    },
  };
}

/**
 * Starts the operator's controller in this process, without leader election, against the
 * simulator; as the harness's admin unless given another client (a restricted identity).
 */
export async function startOperator(
  h: Harness,
  flags: string[] = [],
  kc: KubeConfig = h.kc,
): Promise<DiscordBotController> {
  const config = parseConfig([`--discord-api-url=${h.sim.apiUrl}`, '--leader-elect=false', ...flags], {});
  const controller = new DiscordBotController(
    kc,
    config,
    new OperatorMetrics(),
    createLogger('operator-test', 'silent'),
  );
  await controller.start();
  return controller;
}

export function applyYaml(cp: ControlPlane, objects: unknown[]): void {
  cp.kubectl(['apply', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
}

export function secret(namespace: string, name: string, data: Record<string, string>) {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, stringData: data };
}

export function exampleBot(namespace: string, name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'shardwarden.io/v1alpha1',
    kind: 'DiscordBot',
    metadata: { name, namespace },
    spec: {
      image: 'registry.example/sietch:1.4.2',
      tokenSecretRef: { name: `${name}-discord` },
      redis: { urlSecretRef: { name: `${name}-redis` } },
      ...spec,
    },
  };
}

export async function readBot(kc: KubeConfig, namespace: string, name: string): Promise<DiscordBot> {
  return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: 'shardwarden.io',
    version: 'v1alpha1',
    namespace,
    plural: 'discordbots',
    name,
  })) as DiscordBot;
}

export async function waitForCondition(
  kc: KubeConfig,
  namespace: string,
  name: string,
  type: string,
  status: string,
  reason?: string,
  timeoutMs = 60_000,
): Promise<DiscordBot> {
  let last: DiscordBot | undefined;
  await waitUntil(
    `${namespace}/${name} ${type}=${status}${reason ? ` (${reason})` : ''}`,
    async () => {
      last = await readBot(kc, namespace, name);
      const c = last.status?.conditions?.find((x) => x.type === type);
      return c?.status === status && (!reason || c.reason === reason);
    },
    { timeoutMs, intervalMs: 200 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast status: ${JSON.stringify(last?.status, null, 1)}`);
  });
  return last!;
}

export function events(
  cp: ControlPlane,
  namespace: string,
  bot: string,
): { reason: string; message: string; type: string }[] {
  const out = JSON.parse(
    cp.kubectl([
      'get',
      'events',
      '-n',
      namespace,
      '--field-selector',
      `involvedObject.name=${bot},involvedObject.kind=DiscordBot`,
      '-o',
      'json',
    ]),
  );
  return out.items.map((e: { reason: string; message: string; type: string }) => ({
    reason: e.reason,
    message: e.message,
    type: e.type,
  }));
}

/**
 * Waits for a DiscordBot Event. The operator records Events after the status write, so a test
 * that has just seen a condition must wait for its Event rather than read the list once.
 */
export async function waitForEvent(
  cp: ControlPlane,
  namespace: string,
  bot: string,
  what: string,
  matches: (e: BotEvent) => boolean,
): Promise<BotEvent> {
  let found: BotEvent | undefined;
  await waitUntil(
    `Event: ${what}`,
    async () => (found = events(cp, namespace, bot).find(matches)) !== undefined,
    {
      timeoutMs: 30_000,
      intervalMs: 250,
    },
  );
  return found!;
}

export type BotEvent = { reason: string; message: string; type: string };

/** Merge-patches a DiscordBot's spec with kubectl, as a user editing it would. */
export function patchBot(
  cp: ControlPlane,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): void {
  cp.kubectl(['patch', 'dbot', name, '-n', namespace, '--type=merge', '-p', JSON.stringify({ spec })]);
}
