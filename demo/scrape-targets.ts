// What the demo's Prometheus scrapes, with the target labels a Prometheus running the chart's
// ServiceMonitor (the operator) and PodMonitor (gateway and worker pods) gives their series:
// namespace and pod as the Prometheus operator sets them, bot and component from the PodMonitor's
// relabelings. Series labels win over these (honor_labels, as in both monitors).
import type { ScrapeTarget } from '../testenv/index.js';
import type { DemoPod } from './pods.js';

export function scrapeTargets(
  operator: { port: number; namespace: string; pod: string },
  bot: { namespace: string; name: string },
  pods: readonly Pick<DemoPod, 'name' | 'component' | 'metrics'>[],
): ScrapeTarget[] {
  return [
    {
      address: `127.0.0.1:${operator.port}`,
      labels: { namespace: operator.namespace, pod: operator.pod, component: 'operator' },
    },
    ...pods
      .filter((p) => p.metrics !== undefined)
      .map((p) => ({
        address: p.metrics!,
        labels: { namespace: bot.namespace, pod: p.name, bot: bot.name, component: p.component },
      })),
  ];
}

/** Keeps Prometheus' targets in step with the running pods; returns the function that stops it. */
export function followScrapeTargets(
  current: () => ScrapeTarget[],
  setTargets: (targets: ScrapeTarget[]) => void,
  everyMs = 1_000,
): () => void {
  let last = '';
  const sync = () => {
    const targets = current();
    const text = JSON.stringify(targets);
    if (text === last) return;
    last = text;
    setTargets(targets);
  };
  sync();
  const timer = setInterval(sync, everyMs);
  return () => clearInterval(timer);
}
