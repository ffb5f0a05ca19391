// Operator settings from flags (--name=value) or environment (SHARDWARDEN_NAME), flags first.
// Every problem is reported at once, naming the flag and its variable.
import { hostname } from 'node:os';
import { LOG_LEVELS } from '../../bot/observability/logger.js';
import { parseDuration } from './duration.js';

export interface OperatorConfig {
  /** Namespaces whose DiscordBots are reconciled; empty means all. */
  watchNamespaces: string[];
  discordApiUrl: string;
  leaderElect: boolean;
  leaseName: string;
  leaseNamespace: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  identity: string;
  httpHost: string;
  httpPort: number;
  logLevel: (typeof LOG_LEVELS)[number];
  resyncPeriodMs: number;
  maxConcurrentReconciles: number;
  /** How often the Builtin worker autoscaler reads each bot's backlog. */
  autoscaleIntervalMs: number;
}

interface Setting {
  flag: string;
  env: string;
  defaultValue: string;
  help: string;
}

export const SETTINGS: Setting[] = [
  {
    flag: 'watch-namespaces',
    env: 'SHARDWARDEN_WATCH_NAMESPACES',
    defaultValue: '',
    help: 'comma-separated namespaces to watch; empty: all',
  },
  {
    flag: 'discord-api-url',
    env: 'SHARDWARDEN_DISCORD_API_URL',
    defaultValue: 'https://discord.com/api',
    help: 'Discord REST base URL (without /v10)',
  },
  {
    flag: 'leader-elect',
    env: 'SHARDWARDEN_LEADER_ELECT',
    defaultValue: 'true',
    help: 'elect a leader through a Lease so several replicas can run',
  },
  {
    flag: 'lease-name',
    env: 'SHARDWARDEN_LEASE_NAME',
    defaultValue: 'shardwarden-operator',
    help: 'name of the leader-election Lease',
  },
  {
    flag: 'lease-namespace',
    env: 'SHARDWARDEN_LEASE_NAMESPACE',
    defaultValue: '',
    help: 'namespace of the Lease (default: POD_NAMESPACE, else default)',
  },
  {
    flag: 'lease-duration',
    env: 'SHARDWARDEN_LEASE_DURATION',
    defaultValue: '15s',
    help: 'how long a lease is valid without renewal',
  },
  {
    flag: 'renew-deadline',
    env: 'SHARDWARDEN_RENEW_DEADLINE',
    defaultValue: '10s',
    help: 'the leader gives up if it cannot renew for this long',
  },
  {
    flag: 'retry-period',
    env: 'SHARDWARDEN_RETRY_PERIOD',
    defaultValue: '2s',
    help: 'how often to try to acquire or renew',
  },
  {
    flag: 'identity',
    env: 'SHARDWARDEN_IDENTITY',
    defaultValue: '',
    help: 'leader-election identity (default: POD_NAME, else host and pid)',
  },
  {
    flag: 'http-host',
    env: 'SHARDWARDEN_HTTP_HOST',
    defaultValue: '0.0.0.0',
    help: 'address for /metrics, /healthz, /readyz',
  },
  {
    flag: 'http-port',
    env: 'SHARDWARDEN_HTTP_PORT',
    defaultValue: '8080',
    help: 'port for /metrics, /healthz, /readyz (0: any free port)',
  },
  { flag: 'log-level', env: 'SHARDWARDEN_LOG_LEVEL', defaultValue: 'info', help: LOG_LEVELS.join(', ') },
  {
    flag: 'resync-period',
    env: 'SHARDWARDEN_RESYNC_PERIOD',
    defaultValue: '10m',
    help: 'every DiscordBot is reconciled at least this often',
  },
  {
    flag: 'max-concurrent-reconciles',
    env: 'SHARDWARDEN_MAX_CONCURRENT_RECONCILES',
    defaultValue: '4',
    help: 'bots reconciled in parallel (one reconcile per bot at a time)',
  },
  {
    flag: 'autoscale-interval',
    env: 'SHARDWARDEN_AUTOSCALE_INTERVAL',
    defaultValue: '10s',
    help: "how often the Builtin worker autoscaler reads each bot's queue backlog",
  },
];

export class ConfigError extends Error {}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  const flags = new Map<string, string>();
  const problems: string[] = [];
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const setting = m && SETTINGS.find((s) => s.flag === m[1]);
    if (!m || !setting) {
      problems.push(
        `unknown argument ${arg.split('=')[0]} (known: ${SETTINGS.map((s) => `--${s.flag}`).join(', ')})`,
      );
      continue;
    }
    flags.set(setting.flag, m[2] ?? 'true');
  }
  const raw = (flag: string): string => {
    const s = SETTINGS.find((x) => x.flag === flag)!;
    return flags.get(flag) ?? env[s.env] ?? s.defaultValue;
  };
  const where = (flag: string) => `--${flag} (${SETTINGS.find((x) => x.flag === flag)!.env})`;
  const duration = (flag: string): number => {
    try {
      const ms = parseDuration(raw(flag));
      if (ms <= 0) throw new Error('must be positive');
      return ms;
    } catch (err) {
      problems.push(`${where(flag)}: ${(err as Error).message}`);
      return 0;
    }
  };
  const integer = (flag: string, min: number, max: number): number => {
    const n = Number(raw(flag));
    if (!Number.isInteger(n) || n < min || n > max)
      problems.push(`${where(flag)}: "${raw(flag)}" must be an integer from ${min} to ${max}`);
    return n;
  };
  const boolean = (flag: string): boolean => {
    const v = raw(flag);
    if (v !== 'true' && v !== 'false') problems.push(`${where(flag)}: "${v}" must be true or false`);
    return v === 'true';
  };

  const watchNamespaces = raw('watch-namespaces')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const ns of watchNamespaces)
    if (!DNS_LABEL.test(ns))
      problems.push(`${where('watch-namespaces')}: "${ns}" is not a valid namespace name`);
  const discordApiUrl = raw('discord-api-url').replace(/\/+$/, '');
  try {
    const u = new URL(discordApiUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    problems.push(`${where('discord-api-url')}: "${discordApiUrl}" is not an http(s) URL`);
  }
  const logLevel = raw('log-level') as OperatorConfig['logLevel'];
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`${where('log-level')}: "${logLevel}" must be one of ${LOG_LEVELS.join(', ')}`);

  const config: OperatorConfig = {
    watchNamespaces,
    discordApiUrl,
    leaderElect: boolean('leader-elect'),
    leaseName: raw('lease-name'),
    leaseNamespace: raw('lease-namespace') || env.POD_NAMESPACE || 'default',
    leaseDurationMs: duration('lease-duration'),
    renewDeadlineMs: duration('renew-deadline'),
    retryPeriodMs: duration('retry-period'),
    identity: raw('identity') || env.POD_NAME || `${hostname()}-${process.pid}`,
    httpHost: raw('http-host'),
    httpPort: integer('http-port', 0, 65535),
    logLevel,
    resyncPeriodMs: duration('resync-period'),
    maxConcurrentReconciles: integer('max-concurrent-reconciles', 1, 64),
    autoscaleIntervalMs: duration('autoscale-interval'),
  };
  if (config.leaseDurationMs && config.renewDeadlineMs && config.renewDeadlineMs >= config.leaseDurationMs) {
    problems.push(`${where('renew-deadline')} must be shorter than ${where('lease-duration')}`);
  }
  if (config.retryPeriodMs && config.renewDeadlineMs && config.retryPeriodMs >= config.renewDeadlineMs) {
    problems.push(`${where('retry-period')} must be shorter than ${where('renew-deadline')}`);
  }
  if (!DNS_LABEL.test(config.leaseNamespace))
    problems.push(`${where('lease-namespace')}: "${config.leaseNamespace}" is not a valid namespace name`);
  if (problems.length) throw new ConfigError(`invalid operator configuration:\n  ${problems.join('\n  ')}`);
  return config;
}
