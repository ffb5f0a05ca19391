// Chain-layer metrics. The endpoint label is an origin or rpc<index>, never a full RPC URL.
import { Counter, type Registry } from 'prom-client';

export class ChainMetrics {
  readonly rpcCalls: Counter<'endpoint' | 'outcome'>;
  readonly failovers: Counter<'endpoint'>;

  constructor(registry: Registry) {
    // Several readers (one per chain) may share the caller's registry.
    const existing = (name: string) => registry.getSingleMetric(name) as Counter<never> | undefined;
    this.rpcCalls =
      (existing('shardwarden_chain_rpc_calls_total') as Counter<'endpoint' | 'outcome'> | undefined) ??
      new Counter({
        name: 'shardwarden_chain_rpc_calls_total',
        help: 'JSON-RPC calls per endpoint by outcome (ok, rate_limited, server_error, timeout, error). A revert is ok: the node answered.',
        labelNames: ['endpoint', 'outcome'],
        registers: [registry],
      });
    this.failovers =
      (existing('shardwarden_chain_rpc_failovers_total') as Counter<'endpoint'> | undefined) ??
      new Counter({
        name: 'shardwarden_chain_rpc_failovers_total',
        help: 'Calls that failed on an endpoint and moved on to the next one, by the endpoint failed over from.',
        labelNames: ['endpoint'],
        registers: [registry],
      });
  }
}
