import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports below the kernel's ephemeral range: a port found free here is bound later by another
 * process (etcd, kube-apiserver, Redis...), and a port of the ephemeral range can be taken in
 * between by any outgoing connection on the machine (seen: etcd "bind: address already in use"
 * in a CI run). Random, and never the same twice in one process.
 */
const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 21_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const got = address !== null && typeof address !== 'string' ? address.port : undefined;
      server.close(() => resolve(got));
    });
  });
}

/** A loopback TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  // Above the fixed ports of Kubernetes components (102xx) and below its NodePort range
  // (30000-32767, which kube-proxy on the real node intercepts) and the ephemeral range.
  const low = 20_000;
  const high = Math.min(30_000, ephemeralLow());
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    if ((await tryListen(port)) === port) {
      handedOut.add(port);
      return port;
    }
  }
  const port = await tryListen(0);
  if (port === undefined) throw new Error('no free port');
  return port;
}
