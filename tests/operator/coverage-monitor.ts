// Watches a bot's gateway pods and checks, at every change the apiserver reports, that some
// gateway generation has a Ready pod for each of its shards (every guild has a live session).
// Shard ranges come from what the pods were given (env and pod-index label), through the same
// function the gateway uses, so the check does not trust the operator's own plan.
import { ListWatch, Watch, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { ENV } from '../../bot/runtime-contract.js';
import { shardRangeOfPod } from '../../bot/sharding/shard-range.js';

export const GENERATION_LABEL = 'shardwarden.io/gateway-generation';

export interface CoverageSample {
  at: number;
  /** Generations with at least one Ready pod. */
  readyGenerations: number[];
  /** Generations whose every shard has a Ready pod. */
  coveringGenerations: number[];
  /** Per generation: Ready pods / pods (for failure messages). */
  pods: string;
}

function envOf(pod: V1Pod, name: string): number {
  return Number(pod.spec?.containers[0]?.env?.find((e) => e.name === name)?.value);
}

const isReady = (pod: V1Pod) =>
  !pod.metadata?.deletionTimestamp &&
  !!pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

export function sample(pods: readonly V1Pod[], at = Date.now()): CoverageSample {
  const byGeneration = new Map<
    number,
    { total: number; covered: Set<number>; ready: number; pods: number }
  >();
  for (const pod of pods) {
    const generation = Number(pod.metadata?.labels?.[GENERATION_LABEL]);
    const total = envOf(pod, ENV.totalShards);
    const g = byGeneration.get(generation) ?? { total, covered: new Set<number>(), ready: 0, pods: 0 };
    byGeneration.set(generation, g);
    g.pods += 1;
    if (!isReady(pod)) continue;
    g.ready += 1;
    const index = Number(pod.metadata?.labels?.['apps.kubernetes.io/pod-index']);
    const range = shardRangeOfPod(index, total, envOf(pod, ENV.shardsPerPod));
    for (let s = range.first; s <= range.last; s++) g.covered.add(s);
  }
  const gens = [...byGeneration.entries()].sort(([a], [b]) => a - b);
  return {
    at,
    readyGenerations: gens.filter(([, g]) => g.ready > 0).map(([n]) => n),
    coveringGenerations: gens.filter(([, g]) => g.covered.size === g.total).map(([n]) => n),
    pods: gens
      .map(([n, g]) => `g${n}: ${g.ready}/${g.pods} Ready, ${g.covered.size}/${g.total} shards`)
      .join('; '),
  };
}

export class CoverageMonitor {
  readonly samples: CoverageSample[] = [];
  readonly errors: string[] = [];
  private readonly lw: ListWatch<V1Pod>;

  constructor(kc: KubeConfig, namespace: string, bot: string) {
    const core = kc.makeApiClient(CoreV1Api);
    const selector = `app.kubernetes.io/instance=${bot},app.kubernetes.io/component=gateway`;
    this.lw = new ListWatch<V1Pod>(
      `/api/v1/namespaces/${namespace}/pods`,
      new Watch(kc),
      () => core.listNamespacedPod({ namespace, labelSelector: selector }),
      false,
      selector,
    );
    // The initial list arrives one 'add' at a time: sample only once it is complete.
    const record = () => {
      if (this.listed) this.samples.push(sample(this.lw.list(namespace)));
    };
    this.lw.on('add', record);
    this.lw.on('update', record);
    this.lw.on('delete', record);
    // A failed watch would stop the samples silently: tests check that none failed.
    this.lw.on('error', (err) => this.errors.push(String((err as Error)?.message ?? err)));
  }

  private listed = false;

  async start(): Promise<void> {
    await this.lw.start();
    this.listed = true;
    this.samples.push(sample(this.lw.list()));
  }

  async stop(): Promise<void> {
    await this.lw.stop();
  }

  /** Forgets what was seen (e.g. after a deliberate in-place rollout). */
  reset(): void {
    this.samples.length = 0;
  }

  /** Samples in which no generation had every shard Ready. */
  gaps(): CoverageSample[] {
    return this.samples.filter((s) => s.coveringGenerations.length === 0);
  }

  /** Whether two generations were ever both fully Ready at once. */
  sawBoth(a: number, b: number): boolean {
    return this.samples.some((s) => s.coveringGenerations.includes(a) && s.coveringGenerations.includes(b));
  }
}
