// The part of Kurasuta 3.0.2 (no typings of its own) that Shardwarden uses.
declare module 'kurasuta' {
  import type { EventEmitter } from 'node:events';
  import type { Worker } from 'node:cluster';

  export interface SharderOptions {
    token?: string;
    shardCount?: number;
    clusterCount?: number;
    client?: new (options: never) => unknown;
    clientOptions?: Record<string, unknown>;
    guildsPerShard?: number;
    respawn?: boolean;
    ipcSocket?: string | number;
    timeout?: number;
    retry?: boolean;
    nodeArgs?: string[];
    development?: boolean;
  }

  export class ShardingManager extends EventEmitter {
    constructor(path: string, options: SharderOptions);
    clusters: Map<number, Cluster>;
    clusterCount: number;
    shardCount: number | 'auto';
    respawn: boolean;
    timeout: number;
    guildsPerShard: number;
    path: string;
    spawn(): Promise<void>;
  }

  export class Cluster extends EventEmitter {
    constructor(options: { id: number; shards: number[]; manager: ShardingManager });
    id: number;
    shards: number[];
    ready: boolean;
    worker?: Worker;
    spawn(): Promise<void>;
    respawn(delay?: number): Promise<void>;
    kill(): void;
  }

  /** `Client` is the class passed as the manager's `client` option (the gateway's EarClient). */
  export abstract class BaseCluster<Client = unknown> {
    constructor(manager: ShardingManager);
    readonly client: Client;
    readonly id: number;
    readonly manager: ShardingManager;
    init(): Promise<void>;
    protected abstract launch(): Promise<void> | void;
  }
}

declare module 'kurasuta/dist/Util/Util.js' {
  export function startCluster(manager: import('kurasuta').ShardingManager): Promise<void>;
}
