// Reads a process's settings from the environment the operator renders (bot/runtime-contract.ts).
// A missing or bad value throws a ConfigError whose message names the variable, and never
// echoes a value that may be a secret (URLs with credentials, tokens).
import type { LevelWithSilent } from 'pino';
import { LOG_LEVELS } from '../observability/logger.js';
import { parseRedisTarget, RedisTargetError, type RedisTarget } from './redis-target.js';

export class ConfigError extends Error {}

export class EnvReader {
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  optional(name: string): string | undefined {
    const v = this.env[name]?.trim();
    return v ? v : undefined;
  }

  required(name: string): string {
    const v = this.optional(name);
    if (v === undefined) throw new ConfigError(`${name} is required but not set`);
    return v;
  }

  int(name: string, min: number, fallback?: number, max = Number.MAX_SAFE_INTEGER): number {
    const raw = this.optional(name);
    if (raw === undefined) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`${name} is required but not set`);
    }
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(
        `${name}="${raw}" must be an integer >= ${min}${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}`,
      );
    return n;
  }

  /** Comma-separated list; empty entries dropped. */
  list(name: string, fallback: string[] = []): string[] {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  /** One Redis or a Redis Cluster (redis-target.ts). The value is a secret: errors name the variable only. */
  redis(name: string): RedisTarget {
    try {
      return parseRedisTarget(this.required(name), name);
    } catch (err) {
      throw err instanceof RedisTargetError ? new ConfigError(err.message) : err;
    }
  }

  /** A public http(s) base URL (no credentials expected); trailing slashes removed. */
  httpUrl(name: string, fallback?: string): string {
    const raw = this.optional(name) ?? fallback;
    if (raw === undefined) throw new ConfigError(`${name} is required but not set`);
    const url = raw.replace(/\/+$/, '');
    // The value is not echoed whole: a mistyped URL can still carry credentials.
    if (!/^https?:\/\/./.test(url))
      throw new ConfigError(
        `${name} must be an http:// or https:// URL (got ${/^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? 'no scheme'})`,
      );
    return url;
  }

  logLevel(name = 'SHARDWARDEN_LOG_LEVEL'): LevelWithSilent {
    const level = (this.optional(name) ?? 'info') as LevelWithSilent;
    if (!LOG_LEVELS.includes(level))
      throw new ConfigError(`${name}="${level}" must be one of ${LOG_LEVELS.join(', ')}`);
    return level;
  }
}
