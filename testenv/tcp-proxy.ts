// A TCP proxy in front of a server (the kube-apiserver) that tests can stall: connections stay
// open but no byte moves either way, as when a network path or a load balancer hangs. TLS passes
// through untouched, so clients keep verifying the server's certificate. One connection alone can
// be stalled too, picked by what its client sent (e.g. a BullMQ Worker's blocking reads).
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

export interface TcpProxy {
  /** `host:port` clients connect to. */
  readonly address: string;
  readonly port: number;
  /** From now on nothing is forwarded on any connection, open or new. */
  stall(): void;
  /**
   * Stalls, from now on, each open connection whose client has sent bytes matching `sent` (its
   * latest 4 KiB are kept); connections opened later are not stalled. Returns how many it stalled.
   */
  stallWhere(sent: RegExp): number;
  /** Counts from now on the matches of `sent` (global) in what clients send, chunk by chunk. */
  countSent(sent: RegExp): () => number;
  resume(): void;
  stop(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let stalled = false;
  const sockets = new Set<Socket>();
  /** Per direction of each connection: sends what was held while stalled. */
  const flushers = new Set<() => void>();
  const connections = new Set<Connection>();
  const counters: { sent: RegExp; count: number }[] = [];
  // Bytes that arrive while stalled are held (not dropped: TLS must stay intact for a resume).
  const forward = (connection: Connection, from: Socket, to: Socket) => {
    const held: Buffer[] = [];
    const flush = () => {
      for (const chunk of held.splice(0)) to.write(chunk);
    };
    flushers.add(flush);
    from.on('data', (chunk: Buffer) => (stalled || connection.stalled ? held.push(chunk) : to.write(chunk)));
    from.on('close', () => flushers.delete(flush));
  };
  const server = createServer((client) => {
    const upstream = createConnection({ host: targetHost, port: targetPort });
    const connection: Connection = { stalled: false, sent: '' };
    connections.add(connection);
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      connection.sent = (connection.sent + text).slice(-4096);
      for (const counter of counters) counter.count += text.match(counter.sent)?.length ?? 0;
    });
    client.on('close', () => connections.delete(connection));
    const end = () => {
      for (const s of [client, upstream]) {
        sockets.delete(s);
        s.destroy();
      }
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', end).on('close', end);
    }
    forward(connection, client, upstream);
    forward(connection, upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    port,
    stall() {
      stalled = true;
    },
    stallWhere(sent) {
      const matching = [...connections].filter((c) => !c.stalled && sent.test(c.sent));
      for (const c of matching) c.stalled = true;
      return matching.length;
    },
    countSent(sent) {
      const counter = { sent, count: 0 };
      counters.push(counter);
      return () => counter.count;
    },
    resume() {
      stalled = false;
      for (const c of connections) c.stalled = false;
      flushers.forEach((flush) => flush());
    },
    async stop() {
      sockets.forEach((s) => s.destroy());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Connection {
  stalled: boolean;
  /** The latest bytes its client sent. */
  sent: string;
}
