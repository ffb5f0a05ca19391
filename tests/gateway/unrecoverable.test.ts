// A gateway pod Discord refuses for good (here a token it does not accept): its cluster
// processes report why and exit, and are not started again, since every restart would spend an
// invalid request (or a session start) and change nothing. The pod stays up, unready, saying why.
// A shard refused after login stays down while the others run on.
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { startRedis, waitUntil } from '../../testenv/index.js';
import { childPids, gatewayEnv, metricSum, startGateway, waitReady, type GatewayProcess } from './harness.js';

interface Halted {
  shard: number;
  reason: string;
}

async function halted(gw: GatewayProcess): Promise<Halted[]> {
  const res = await fetch(`http://127.0.0.1:${gw.port}/readyz`);
  return ((await res.json()) as { details: { halted: Halted[] } }).details.halted;
}

/** GETs /metrics back to back on 2 connections until stopped; `answered` counts the answers. */
function scraping(gw: GatewayProcess) {
  let stopped = false;
  let answered = 0;
  const scraper = async () => {
    while (!stopped) {
      await (await fetch(`http://127.0.0.1:${gw.port}/metrics`)).text();
      answered++;
    }
  };
  const done = Promise.all([scraper(), scraper()]);
  done.catch(() => undefined); // awaited by stop()
  return {
    async stop(): Promise<number> {
      stopped = true;
      await done;
      return answered;
    },
  };
}

test('a token Discord does not accept: shards halted with the reason, cluster processes not restarted', async () => {
  const sim = await DiscordSimulator.start({ seed: 5, guilds: 8 });
  const redis = await startRedis();
  try {
    const gw = await startGateway(gatewayEnv(sim, redis.url, 0, { DISCORD_TOKEN: 'not-the-token' }));
    try {
      // Scraped all along: a metrics request to a cluster process that is exiting must not crash
      // the primary (it did: the message's EPIPE was thrown as an unhandled 'error').
      const scrapes = scraping(gw);
      const details = async () =>
        (
          (await (await fetch(`http://127.0.0.1:${gw.port}/readyz`)).json()) as {
            details: { halted: { shard: number; reason: string }[] };
          }
        ).details;
      await waitUntil('all four shards halted', async () => (await details()).halted.length === 4, {
        process: gw.proc,
        timeoutMs: 60_000,
      });
      for (const h of (await details()).halted) expect(h.reason).toContain('HTTP 401');
      expect(await gw.ready()).toBe(false);
      expect(metricSum(await gw.metrics(), 'shardwarden_gateway_pod_shards_halted')).toBe(4);
      // Both cluster processes are gone and stay gone: the primary alone is left.
      await waitUntil('cluster processes exited', async () => childPids(gw.proc.child.pid!).length === 0, {
        process: gw.proc,
        timeoutMs: 30_000,
      });
      expect(await scrapes.stop()).toBeGreaterThan(0);
      // One GET /gateway/bot per cluster process: none started again.
      expect(sim.recorder.restCalls.filter((r) => r.route === 'GET /gateway/bot')).toHaveLength(2);
      expect(sim.recorder.counters.restInvalid).toBe(2);
      expect(gw.proc.exited()).toBe(false);
    } finally {
      await gw.proc.stop(30_000);
    }
  } finally {
    await sim.stop();
    await redis.close();
  }
});

test('a close Discord lets no one recover from, after login: that shard halted with the code, the others run on', async () => {
  const sim = await DiscordSimulator.start({ seed: 5, guilds: 8 });
  const redis = await startRedis();
  try {
    const gw = await startGateway(gatewayEnv(sim, redis.url, 0));
    try {
      await waitReady(gw);
      expect(sim.fault(2, { kind: 'close', code: 4014 }, 4)).toBe(1);
      await waitUntil('shard 2 halted', async () => (await halted(gw)).length === 1, {
        process: gw.proc,
        timeoutMs: 60_000,
      });
      expect(await halted(gw)).toEqual([
        { shard: 2, reason: 'Discord closed the connection with 4014 (DisallowedIntents)' },
      ]);
      expect(await gw.ready()).toBe(false);
      const metrics = await gw.metrics();
      expect(metricSum(metrics, 'shardwarden_gateway_pod_shards_halted')).toBe(1);
      expect(metricSum(metrics, 'shardwarden_gateway_pod_shards_ready')).toBe(3);
      // Its cluster process runs on (its other shard is up): both are still there.
      expect(childPids(gw.proc.child.pid!)).toHaveLength(2);
    } finally {
      await gw.proc.stop(30_000);
    }
  } finally {
    await sim.stop();
    await redis.close();
  }
});

test('a pod of one cluster (in its own process) refused for good: shards halted with the reason, the process stays up, nothing retried', async () => {
  const sim = await DiscordSimulator.start({ seed: 5, guilds: 8 });
  const redis = await startRedis();
  try {
    const gw = await startGateway(
      gatewayEnv(sim, redis.url, 0, { DISCORD_TOKEN: 'not-the-token', SHARDWARDEN_CLUSTERS_PER_POD: '1' }),
    );
    try {
      await waitUntil('all four shards halted', async () => (await halted(gw)).length === 4, {
        process: gw.proc,
        timeoutMs: 60_000,
      });
      for (const h of await halted(gw)) expect(h.reason).toContain('HTTP 401');
      expect(await gw.ready()).toBe(false);
      expect(metricSum(await gw.metrics(), 'shardwarden_gateway_pod_shards_halted')).toBe(4);
      expect(sim.recorder.restCalls.filter((r) => r.route === 'GET /gateway/bot')).toHaveLength(1);
      expect(gw.proc.exited()).toBe(false);
    } finally {
      await gw.proc.stop(30_000);
    }
  } finally {
    await sim.stop();
    await redis.close();
  }
});

test('a pod of one cluster (in its own process) refused at IDENTIFY during login: every shard halted and none left connected', async () => {
  // Intents the application may not use: the first shard's IDENTIFY is closed with 4014 while
  // the others wait their identify turn (one at a time), their sockets open.
  const sim = await DiscordSimulator.start({
    seed: 5,
    guilds: 8,
    gateway: { maxConcurrency: 1, enabledPrivilegedIntents: 0 },
  });
  const redis = await startRedis();
  try {
    const gw = await startGateway(
      gatewayEnv(sim, redis.url, 0, {
        SHARDWARDEN_CLUSTERS_PER_POD: '1',
        SHARDWARDEN_INTENTS: 'Guilds,GuildMessages,GuildMembers',
      }),
    );
    try {
      await waitUntil('all four shards halted', async () => (await halted(gw)).length === 4, {
        process: gw.proc,
        timeoutMs: 60_000,
      });
      for (const h of await halted(gw)) expect(h.reason).toContain('4014 (DisallowedIntents)');
      // As a forked cluster's exit drops its sockets: the waiting shards are closed, not left
      // to identify (each would spend a session start) or to run on while reported halted.
      await waitUntil('no connection left', async () => sim.gateway.openConnections() === 0, {
        process: gw.proc,
        timeoutMs: 30_000,
      });
      expect(sim.recorder.identifies).toHaveLength(1);
      expect(await gw.ready()).toBe(false);
      expect(gw.proc.exited()).toBe(false);
    } finally {
      await gw.proc.stop(30_000);
    }
  } finally {
    await sim.stop();
    await redis.close();
  }
});
