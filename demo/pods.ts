// The bot's pods as the demo narrates and scrapes them, wherever they run: host processes of the
// pod runner (kwok) or containers on a real node, found through the API.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { POD_HTTP_PORT } from '../bot/runtime-contract.js';
import { kubeBinary, type PodRunner } from '../testenv/index.js';

export interface DemoPod {
  name: string;
  /** gateway or worker. */
  component: string;
  ready: boolean;
  /** `host:port` of its /metrics; undefined while it has no process to scrape. */
  metrics?: string;
  /** Where it runs, for the narration: a pid or a pod IP. */
  where: string;
}

export interface DemoPods {
  pods(): DemoPod[];
  stop(): Promise<void>;
}

/** The pod runner's processes, each on its own loopback port. */
export function runnerPods(runner: PodRunner): DemoPods {
  return {
    pods: () =>
      runner.pods().map((p) => ({
        name: p.name,
        component: p.component,
        ready: p.ready,
        // A pod between a crash and its restart has no process to scrape.
        ...(p.pid !== undefined && { metrics: `127.0.0.1:${p.httpPort}` }),
        where: `pid ${p.pid ?? '-'}`,
      })),
    stop: () => runner.stop(),
  };
}

interface ApiPod {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

/** A pod of the API as the demo sees it (pure): scraped at its IP, on the pods' HTTP port. */
export function demoPodOf(pod: ApiPod): DemoPod {
  const ip = pod.status.phase === 'Running' ? pod.status.podIP : undefined;
  return {
    name: pod.metadata.name,
    component: pod.metadata.labels?.['app.kubernetes.io/component'] ?? '',
    ready: !!pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    ...(ip && { metrics: `${ip}:${POD_HTTP_PORT}` }),
    where: `pod IP ${ip ?? '-'}`,
  };
}

/**
 * The pods matching `labelSelector` on a real node, listed from the API every `everyMs` (with an
 * async kubectl: the simulator shares this process's event loop). Pods being deleted are left
 * out, as they no longer count for their controller.
 */
export async function followNodePods(
  kubeconfigPath: string,
  namespace: string,
  labelSelector: string,
  everyMs = 1_000,
): Promise<DemoPods> {
  const run = promisify(execFile);
  let current: DemoPod[] = [];
  let stopped = false;
  const list = async () => {
    const { stdout } = await run(
      kubeBinary('kubectl'),
      ['--kubeconfig', kubeconfigPath, '-n', namespace, 'get', 'pods', '-l', labelSelector, '-o', 'json'],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    current = (JSON.parse(stdout) as { items: ApiPod[] }).items
      .filter((p) => !p.metadata.deletionTimestamp)
      .map(demoPodOf);
  };
  await list();
  const loop = (async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, everyMs));
      // A failed listing keeps the last one; the next try follows.
      if (!stopped) await list().catch(() => undefined);
    }
  })();
  return {
    pods: () => current,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
