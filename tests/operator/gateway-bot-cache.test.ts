// The operator's GET /gateway/bot cache against the simulator, on a clock the test turns: when to
// look again is decided at the same instant as whether to look now.
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { GatewayBotCache } from '../../operator/discord/gateway-bot.js';

const TOKEN = 'cache-token';
const HOUR = 3_600_000;

describe('GatewayBotCache (simulator)', () => {
  let sim: DiscordSimulator;

  beforeAll(async () => {
    sim = await DiscordSimulator.start({ tokens: [TOKEN] });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  test('a rate-limited bot is looked at again when retry_after is over, even if the clock ticks mid-lookup', async () => {
    // Each reading of the clock is the next millisecond, as when Date.now() moves on between two
    // readings in one lookup (what left 1 of 300 bots of services.test waiting an hour).
    let clock = 1_000_000;
    const cache = new GatewayBotCache(sim.apiUrl, undefined, undefined, () => clock++);
    sim.rateLimits.force429('GET /gateway/bot', 1_000, { token: TOKEN, times: 1 });

    const limited = await cache.lookup('ns/bot', TOKEN, HOUR);
    expect(limited.problem?.reason).toBe('DiscordRateLimited');
    expect(limited.info).toBeUndefined();
    const retryAt = clock - 1 + limited.nextCheckMs;

    // Asked 1 ms before retry_after is over: the wait left is 1 ms, never the hour-long refresh.
    clock = retryAt - 1;
    const waiting = await cache.lookup('ns/bot', TOKEN, HOUR);
    expect(waiting.info).toBeUndefined();
    expect(waiting.nextCheckMs).toBe(1);

    const answered = await cache.lookup('ns/bot', TOKEN, HOUR);
    expect(answered.problem).toBeUndefined();
    expect(answered.info?.shards).toBe(sim.recommendedShards());
  });
});
