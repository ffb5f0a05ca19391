// A KubeConfig whose API requests share one connection pool. @kubernetes/client-node 2.0 builds
// a new undici Agent for every request (KubeConfig.applySecurityAuthentication), so each request
// opened its own TLS connection: a handshake, a socket and TLS buffers per request, which the
// startup burst of a thousand bots turned into tens of megabytes of memory outside the JS heap.
import { KubeConfig } from '@kubernetes/client-node';

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];
type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

export class PooledKubeConfig extends KubeConfig {
  /** One pool per cluster and user, the same key client-node uses for its WebSocket agents. */
  private readonly pools = new Map<string, Dispatcher>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (!fresh) return; // plain HTTP without TLS options: the global pool already serves it
    const key = JSON.stringify([this.getCurrentCluster()?.name ?? '', this.getCurrentUser()?.name ?? '']);
    const pool = this.pools.get(key);
    if (!pool) {
      this.pools.set(key, fresh);
      return;
    }
    context.setDispatcher(pool);
    void fresh.close(); // never connected: closing it frees nothing but its bookkeeping
  }

  /** Closes the pooled connections (the process is stopping). */
  async closePools(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close()));
  }
}

/** A pooled copy of `kc` (same clusters, users and contexts); `kc` itself when it already is one. */
export function pooled(kc: KubeConfig): PooledKubeConfig {
  if (kc instanceof PooledKubeConfig) return kc;
  const copy = new PooledKubeConfig();
  copy.loadFromOptions({
    clusters: kc.getClusters(),
    users: kc.getUsers(),
    contexts: kc.getContexts(),
    currentContext: kc.getCurrentContext(),
  });
  return copy;
}
