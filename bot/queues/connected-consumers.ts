// Which queue consumers are connected, from Redis' `CLIENT LIST`: BullMQ names a consumer's
// connection after its prefix, queue and worker name (queue-names.ts, consumerClientName), so a
// look tells which releases consume a queue. The workers look (claim-format.ts) to choose the
// claim format and to tell the gateways whether batch bodies may be written.
import type { RedisClient } from '../configuration/redis-connection.js';

/** Whether any connection of these `CLIENT LIST` answers has one of `names`. */
export function anyClientNamed(lists: readonly string[], names: ReadonlySet<string>): boolean {
  return lists.some((list) =>
    list.split('\n').some((line) => {
      const name = / name=(\S*)/.exec(line)?.[1];
      return name !== undefined && names.has(name);
    }),
  );
}

/** `CLIENT LIST` of the server, or of every master of a Redis Cluster. */
export async function clientLists(redis: RedisClient): Promise<string[]> {
  const nodes = 'nodes' in redis ? redis.nodes('master') : [redis];
  return Promise.all(nodes.map(async (node) => String(await node.client('LIST'))));
}

/** A refusal of the command itself (ACL, renamed or disabled), not a passing failure. */
export const isRefusal = (err: unknown) =>
  /^(NOPERM|ERR unknown (sub)?command)/i.test(err instanceof Error ? err.message : String(err));
