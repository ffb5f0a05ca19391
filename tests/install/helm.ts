// Helm and YAML helpers for the install tests.
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { kubeBinary } from '../../testenv/index.js';

export const CHART = 'charts/shardwarden';
export const RELEASE_NAMESPACE = 'shardwarden-system';

export interface KubeDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export function helm(args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(kubeBinary('helm'), args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
}

/** `helm install` of the chart as `release` into RELEASE_NAMESPACE (created), with `--set` values. */
export function installChart(
  kubeconfigPath: string,
  release: string,
  sets: string[],
  extra: string[] = [],
): string {
  return helm([
    'install',
    release,
    CHART,
    '--kubeconfig',
    kubeconfigPath,
    '--namespace',
    RELEASE_NAMESPACE,
    '--create-namespace',
    ...sets.flatMap((s) => ['--set', s]),
    ...extra,
  ]);
}

/** `helm template` of the chart as release `sw`, parsed into objects. */
export function renderChart(values: string[], extra: string[] = []): { text: string; docs: KubeDoc[] } {
  const text = helm(['template', 'sw', CHART, '--namespace', RELEASE_NAMESPACE, ...values, ...extra]);
  return { text, docs: parseDocs(text) };
}

export function parseDocs(text: string): KubeDoc[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`YAML error: ${d.errors[0]!.message}`);
      return d.toJS() as KubeDoc | null;
    })
    .filter((d): d is KubeDoc => d !== null && typeof d === 'object');
}
