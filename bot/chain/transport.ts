// viem's fallback transport over the RPC endpoints, each wrapped to count outcomes and
// failovers, and to step aside for a while after it failed so that a rate-limited or hung
// endpoint does not cost every call a wasted round trip or a full timeout.
import { fallback, http, type Transport } from 'viem';
import type { Logger } from '../observability/logger.js';
import { classifyRpcError, type RpcEndpoint } from './endpoints.js';
import type { ChainMetrics } from './metrics.js';

export interface FailoverTransportOptions {
  timeoutMs: number;
  /** How long an endpoint that failed is skipped while others remain (0 disables). */
  cooldownMs: number;
  /** Retries of the whole endpoint list after all failed (viem backs off between them). */
  retryCount: number;
  metrics: ChainMetrics;
  logger?: Logger;
}

class EndpointCoolingDown extends Error {
  override readonly name = 'EndpointCoolingDown';
}

function endpointTransport(endpoint: RpcEndpoint, isLast: boolean, o: FailoverTransportOptions): Transport {
  // viem only ever sees publicUrl (it quotes it in errors); the request goes to the real URL.
  const inner = http(endpoint.publicUrl, {
    timeout: o.timeoutMs,
    retryCount: 0,
    fetchOptions: { headers: endpoint.target.headers },
    fetchFn: (_url, init) => fetch(endpoint.target.url, init),
  });
  let coolingUntil = 0;
  return ((params) => {
    const transport = inner(params);
    const request = async (
      args: { method: string; params?: unknown },
      options?: Parameters<typeof transport.request>[1],
    ) => {
      // The last endpoint is always tried: there is nothing left to fall over to.
      if (!isLast && Date.now() < coolingUntil) throw new EndpointCoolingDown(endpoint.label);
      try {
        const result: unknown = await transport.request(args as never, options);
        o.metrics.rpcCalls.inc({ endpoint: endpoint.label, outcome: 'ok' });
        return result;
      } catch (err) {
        const failure = classifyRpcError(err);
        o.metrics.rpcCalls.inc({ endpoint: endpoint.label, outcome: failure.outcome });
        if (failure.failover) {
          if (o.cooldownMs > 0) coolingUntil = Date.now() + o.cooldownMs;
          if (!isLast) o.metrics.failovers.inc({ endpoint: endpoint.label });
          o.logger?.warn(
            {
              endpoint: endpoint.label,
              method: args.method,
              outcome: failure.outcome,
              reason: failure.summary,
            },
            isLast
              ? 'RPC endpoint failed; no endpoint left to fail over to'
              : 'RPC endpoint failed; failing over',
          );
        }
        throw err;
      }
    };
    return { ...transport, request: request as typeof transport.request };
  }) as Transport;
}

export function createFailoverTransport(endpoints: RpcEndpoint[], o: FailoverTransportOptions): Transport {
  const transports = endpoints.map((endpoint, i) =>
    endpointTransport(endpoint, i === endpoints.length - 1, o),
  );
  return fallback(transports, { retryCount: o.retryCount, retryDelay: 200 });
}
