// The database handle domain code gets: a Prisma client over node-postgres, and per-community
// transactions in which Postgres row-level security shows only that community's rows.
import { PrismaPg } from '@prisma/adapter-pg';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { PrismaClient, type Prisma } from './generated/client.js';
import { DatabaseMetrics } from './metrics.js';
import { redactError } from './redact.js';

export interface DatabaseOptions {
  url: string;
  logger?: Logger;
  registry?: Registry;
  /** Connections in this process's pool (default 5); see docs/database.md for sizing. */
  poolMax?: number;
}

/** The client inside withCommunity: a Prisma interactive transaction with the tenant set. */
export type TenantTx = Prisma.TransactionClient;

export interface Database {
  /** Outside any tenant: only `communities` is visible (tenant tables return no rows). */
  prisma: PrismaClient;
  /** Runs fn in one transaction whose tenant (app.community_id) is communityId. */
  withCommunity<T>(communityId: string, fn: (tx: TenantTx) => Promise<T>): Promise<T>;
  /** Connections in this process's pool. */
  readonly poolMax: number;
  close(): Promise<void>;
}

export const DEFAULT_POOL_MAX = 5;
/** A query waiting longer than this for a free pooled connection fails instead of hanging. */
const CONNECTION_TIMEOUT_MS = 10_000;

export class DatabaseConfigError extends Error {}

export function createDatabase(o: DatabaseOptions): Database {
  if (!/^postgres(ql)?:\/\/./.test(o.url))
    throw new DatabaseConfigError('database url must be a postgres:// or postgresql:// URL');
  const poolMax = o.poolMax ?? DEFAULT_POOL_MAX;
  if (!Number.isInteger(poolMax) || poolMax < 1)
    throw new DatabaseConfigError(`poolMax=${poolMax} must be an integer >= 1`);
  const metrics = new DatabaseMetrics(o.registry);
  const url = o.url;
  // Errors already counted under their operation, so a failed transaction is not counted twice.
  const counted = new WeakSet<object>();

  const adapter = new PrismaPg(
    {
      connectionString: url,
      max: poolMax,
      connectionTimeoutMillis: CONNECTION_TIMEOUT_MS,
      application_name: 'shardwarden',
    },
    {
      // An idle pooled connection dropped by the server (failover, PgBouncer restart): pg
      // replaces it; logged so it is visible, without the URL.
      onPoolError: (err) => o.logger?.warn({ err: redactError(err, url) }, 'database pool connection error'),
    },
  );
  const base = new PrismaClient({ adapter });
  const prisma = base.$extends({
    query: {
      async $allOperations({ model, operation, args, query }) {
        try {
          return await query(args);
        } catch (err) {
          const label = model ? `${model}.${operation}` : operation;
          metrics.errors.inc({ operation: label });
          if (err !== null && typeof err === 'object') counted.add(err);
          throw redactError(err, url);
        }
      },
    },
  });
  // The extension only wraps queries: the model API and its types are PrismaClient's.
  const client = prisma as unknown as PrismaClient;

  return {
    prisma: client,
    poolMax,
    async withCommunity<T>(communityId: string, fn: (tx: TenantTx) => Promise<T>): Promise<T> {
      if (typeof communityId !== 'string' || communityId.length === 0)
        throw new DatabaseConfigError(
          `withCommunity: communityId must be a non-empty string, got ${JSON.stringify(communityId)}`,
        );
      // Errors of fn are the caller's (its queries are counted by the extension); what fails
      // outside it (BEGIN, COMMIT, a dead connection, the timeout) is counted as `transaction`.
      let fnFailed = false;
      try {
        return await client.$transaction(async (tx) => {
          // Transaction-local (third argument true): ends with the transaction, so it is safe
          // on pooled connections and behind PgBouncer in transaction mode.
          await tx.$queryRaw`SELECT set_config('app.community_id', ${communityId}, true)`;
          try {
            return await fn(tx);
          } catch (err) {
            fnFailed = true;
            throw err;
          }
        });
      } catch (err) {
        if (!fnFailed && !(typeof err === 'object' && err !== null && counted.has(err)))
          metrics.errors.inc({ operation: 'transaction' });
        throw redactError(err, url);
      }
    },
    async close() {
      await base.$disconnect();
    },
  };
}
