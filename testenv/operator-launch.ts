// How the Helm chart starts the operator, read from its rendered Deployment: the install tests
// check that node accepts it, and bench-operator starts the operator the same way, so a flag the
// chart passes is measured as it is passed (and a flag node refuses fails both).
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { kubeBinary } from './binaries.js';

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
}

/** The operator's node invocation: flags before the script, the script, its arguments, literal env. */
export interface OperatorLaunch {
  /** The container's whole command, as rendered. */
  command: string[];
  nodeFlags: string[];
  script: string;
  args: string[];
  /** The container's env entries with a literal value (not the Downward API ones). */
  env: Record<string, string>;
}

/** Splits the container's `tini -- node <flags> <script>` command; anything else is an error. */
export function operatorLaunch(container: Container): OperatorLaunch {
  const command = container.command ?? [];
  const node = command.indexOf('node');
  const script = command.findIndex((part, i) => i > node && !part.startsWith('-'));
  if (node < 0 || script !== command.length - 1)
    throw new Error(
      `the operator container's command is not "... node <flags> <script>": ${JSON.stringify(command)}`,
    );
  return {
    command,
    nodeFlags: command.slice(node + 1, script),
    script: command[script]!,
    args: container.args ?? [],
    env: Object.fromEntries(
      (container.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])),
    ),
  };
}

/** `helm template` of the chart (with `--set` values) → the operator container's launch. */
export function renderOperatorLaunch(sets: string[] = []): OperatorLaunch {
  const text = execFileSync(
    kubeBinary('helm'),
    [
      'template',
      'sw',
      'charts/shardwarden',
      '--show-only',
      'templates/deployment.yaml',
      ...sets.flatMap((s) => ['--set', s]),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const deployment = parseAllDocuments(text)[0]!.toJS() as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'operator');
  if (!container) throw new Error('the chart renders no "operator" container');
  return operatorLaunch(container);
}
