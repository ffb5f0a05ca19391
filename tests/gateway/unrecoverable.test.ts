// A gateway pod Discord refuses for good (here a token it does not accept): its cluster
// processes report why and exit, and are not started again, since every restart would spend an
// invalid request (or a session start) and change nothing. The pod stays up, unready, saying why.
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { startRedis, waitUntil } from '../../testenv/index.js';
import { childPids, gatewayEnv, metricSum, startGateway } from './harness.js';

test('a token Discord does not accept: shards halted with the reason, cluster processes not restarted', async () => {
  const sim = await DiscordSimulator.start({ seed: 5, guilds: 8 });
  const redis = await startRedis();
  try {
    const gw = await startGateway(gatewayEnv(sim, redis.url, 0, { DISCORD_TOKEN: 'not-the-token' }));
    try {
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
