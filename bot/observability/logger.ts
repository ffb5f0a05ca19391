// Structured JSON logs (pino). Every component logs with its name; bot processes add the bot
// name and shard. Secrets are redacted by key wherever they might be passed in.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS: LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(
  component: string,
  level: LevelWithSilent = 'info',
  bindings: Record<string, unknown> = {},
): Logger {
  return pino({
    level,
    base: { component, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: [
        'token',
        '*.token',
        'authorization',
        '*.authorization',
        'url',
        'redisUrl',
        'redis.url',
        'redis.password',
        'databaseUrl',
      ],
      censor: '[redacted]',
    },
  });
}
