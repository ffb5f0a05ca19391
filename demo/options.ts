// The demo's settings: flags win over environment variables, which win over the defaults.
// Pure, so bad input is reported before anything starts.
import { parseArgs } from 'node:util';

export interface DemoOptions {
  /** Guilds the simulated bot is in at start. */
  guilds: number;
  /** Guilds each shard should carry (spec.sharding.guildsPerShard): fewer gives more shards. */
  guildsPerShard: number;
  /** Steady MESSAGE_CREATE events per second, from the first event until the end. */
  eventRate: number;
  /** Seconds of steady traffic before the burst. */
  durationSeconds: number;
  /** Events sent at once to build a backlog for the worker autoscaler. */
  burst: number;
  /** Slash commands injected to measure the round trip. */
  interactions: number;
  /** spec.worker.scaleDownStabilizationSeconds. */
  scaleDownSeconds: number;
  /** Time each event takes in the demo handler (so a burst builds a backlog). */
  eventDelayMs: number;
  /** Run the reshard step (add guilds until Discord recommends more shards). */
  reshard: boolean;
  /**
   * Where the bot's pods run: `real` (containers on a real node), `kwok` (fake nodes and the
   * host-process pod runner), or `auto`: real when this machine can start a real node.
   */
  node: DemoNode;
}

export const DEMO_NODES = ['auto', 'real', 'kwok'] as const;
export type DemoNode = (typeof DEMO_NODES)[number];

export const DEFAULT_OPTIONS: DemoOptions = {
  guilds: 3000,
  guildsPerShard: 500,
  eventRate: 50,
  durationSeconds: 20,
  burst: 5000,
  interactions: 20,
  scaleDownSeconds: 15,
  eventDelayMs: 10,
  reshard: true,
  node: 'auto',
};

interface Setting {
  key: keyof DemoOptions;
  flag: string;
  env: string;
  min: number;
  max: number;
  help: string;
}

export const SETTINGS: Setting[] = [
  { key: 'guilds', flag: 'guilds', env: 'DEMO_GUILDS', min: 1, max: 200_000, help: 'guilds at start' },
  {
    key: 'guildsPerShard',
    flag: 'guilds-per-shard',
    env: 'DEMO_GUILDS_PER_SHARD',
    min: 100,
    max: 2500,
    help: 'spec.sharding.guildsPerShard',
  },
  {
    key: 'eventRate',
    flag: 'rate',
    env: 'DEMO_EVENT_RATE',
    min: 1,
    max: 5000,
    help: 'steady events per second',
  },
  {
    key: 'durationSeconds',
    flag: 'duration',
    env: 'DEMO_DURATION',
    min: 1,
    max: 3600,
    help: 'seconds of steady traffic before the burst',
  },
  {
    key: 'burst',
    flag: 'burst',
    env: 'DEMO_BURST',
    min: 0,
    max: 1_000_000,
    help: 'events sent at once (0: no burst)',
  },
  {
    key: 'interactions',
    flag: 'interactions',
    env: 'DEMO_INTERACTIONS',
    min: 1,
    max: 10_000,
    help: 'slash commands for the round trip',
  },
  {
    key: 'scaleDownSeconds',
    flag: 'scale-down-window',
    env: 'DEMO_SCALE_DOWN_WINDOW',
    min: 1,
    max: 3600,
    help: 'scale-down stabilization window, seconds',
  },
  {
    key: 'eventDelayMs',
    flag: 'event-delay-ms',
    env: 'DEMO_EVENT_DELAY_MS',
    min: 0,
    max: 10_000,
    help: 'time each event takes in the handler',
  },
];

export class DemoOptionsError extends Error {}

export function usage(): string {
  const lines = SETTINGS.map(
    (s) =>
      `  --${s.flag.padEnd(20)} ${s.env.padEnd(24)} ${s.help} (default ${String(DEFAULT_OPTIONS[s.key])})`,
  );
  return [
    'usage: make demo [DEMO_ARGS="--flag value ..."]   or   node dist/demo/main.js [flags]',
    '  flag                   environment',
    ...lines,
    `  --node auto|real|kwok  DEMO_NODE                 where the pods run: real containers or kwok and the pod runner (default auto: real when this machine can start a real node)`,
    '  --no-reshard           DEMO_RESHARD=0            skip the reshard step',
    '  --help',
  ].join('\n');
}

/** Reads flags and environment; throws DemoOptionsError naming the flag or variable. */
export function parseDemoOptions(argv: string[], env: NodeJS.ProcessEnv): DemoOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const }])),
        node: { type: 'string' },
        'no-reshard': { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
  } catch (err) {
    throw new DemoOptionsError(`${(err as Error).message}\n${usage()}`);
  }
  if (parsed.values.help) return 'help';
  const options = { ...DEFAULT_OPTIONS };
  const problems: string[] = [];
  for (const s of SETTINGS) {
    const fromFlag = (parsed.values as Record<string, string | boolean | undefined>)[s.flag] as
      string | undefined;
    const raw = fromFlag ?? env[s.env];
    if (raw === undefined || raw === '') continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < s.min || n > s.max)
      problems.push(
        `${fromFlag !== undefined ? `--${s.flag}` : s.env}=${JSON.stringify(raw)} must be an integer from ${s.min} to ${s.max}`,
      );
    else (options[s.key] as number) = n;
  }
  if (parsed.values['no-reshard'] || env.DEMO_RESHARD === '0') options.reshard = false;
  const node = parsed.values.node ?? env.DEMO_NODE;
  if (node !== undefined && node !== '') {
    if ((DEMO_NODES as readonly string[]).includes(node)) options.node = node as DemoNode;
    else
      problems.push(
        `${parsed.values.node !== undefined ? '--node' : 'DEMO_NODE'}=${JSON.stringify(node)} must be one of ${DEMO_NODES.join(', ')}`,
      );
  }
  if (problems.length) throw new DemoOptionsError(problems.join('\n'));
  return options;
}

/**
 * The node the pods run on: `auto` is real unless `unavailable` says why this machine cannot
 * start one; then kwok, with a warning to print (a fallback is never silent). An explicit
 * choice is kept, so `--node real` on such a machine fails with the reason instead.
 */
export function chooseNode(
  choice: DemoNode,
  unavailable: string | undefined,
): { node: 'real' | 'kwok'; warning?: string } {
  if (choice !== 'auto') return { node: choice };
  if (!unavailable) return { node: 'real' };
  return { node: 'kwok', warning: kwokFallbackWarning(unavailable) };
}

/** What `auto` says when the pods run on kwok instead of a real node, and why. */
export function kwokFallbackWarning(why: string): string {
  return `WARNING: no real node on this machine (${why}): the pods run on kwok's fake nodes, as host processes of the pod runner, not in containers (--node kwok chooses that without this warning).`;
}
