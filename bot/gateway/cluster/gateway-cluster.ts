// One Kurasuta cluster process of a gateway pod (clustersPerPod > 1): the cluster's work
// (cluster-work.ts) linked to the pod's primary process over Node's cluster IPC.
import { AggregatorRegistry, register } from 'prom-client';
import { parseGatewayConfig } from '../config.js';
import { isShardwardenMessage, type ClusterMessage } from '../ipc.js';
import { BaseCluster } from '../sharding/load-kurasuta.js';
import { runClusterWork, type PrimaryLink } from './cluster-work.js';
import type { EarClient } from './ear-client.js';

export default class GatewayCluster extends BaseCluster<EarClient> {
  protected async launch(): Promise<void> {
    new AggregatorRegistry(); // answers the primary's metrics requests (from the global registry)
    await runClusterWork(parseGatewayConfig(process.env), this.id, this.client, ipcLink);
  }
}

const ipcLink: PrimaryLink = {
  registry: register,
  send: (m: ClusterMessage) =>
    new Promise<void>((resolve) => (process.send ? process.send(m, () => resolve()) : resolve())),
  onShutdown(stop) {
    process.on('message', (m: unknown) => {
      if (isShardwardenMessage(m) && m.shardwarden === 'shutdown') void stop(m.deadlineMs);
    });
  },
  end: (code) => process.exit(code),
};
