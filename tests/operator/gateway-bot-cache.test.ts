// The operator's GET /gateway/bot cache against the simulator, on a clock the test turns: when to
// look again is decided at the same instant as whether to look now; bots that share a token
// share its answer, its request in flight and its rate limit.
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { GatewayBotCache } from '../../operator/discord/gateway-bot.js';

const TOKEN = 'cache-token';
const SHARED = 'shared-token';
const HOUR = 3_600_000;

describe('GatewayBotCache (simulator)', () => {
  let sim: DiscordSimulator;

  beforeAll(async () => {
    sim = await DiscordSimulator.start({ tokens: [TOKEN, SHARED] });
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

  const calls = (token: string) =>
    sim.recorder.restCalls.filter(
      (c) => c.route === 'GET /gateway/bot' && c.tokenIndex === sim.tokenIndex(token),
    );

  test('bots that share a token send one request between them, and wait out its 429 together', async () => {
    const cache = new GatewayBotCache(sim.apiUrl);
    const bots = Array.from({ length: 20 }, (_, i) => `ns/bot-${i}`);
    // All at once, as a burst of new bots: one request in flight serves every one of them.
    const answers = await Promise.all(bots.map((b) => cache.lookup(b, SHARED, HOUR)));
    expect(answers.every((a) => a.info?.shards === sim.recommendedShards())).toBe(true);
    expect(calls(SHARED)).toHaveLength(1);

    // A 429 for the token holds every bot of it until retry_after, without asking again.
    sim.rateLimits.force429('GET /gateway/bot', 60_000, { token: SHARED, times: 1 });
    const limited = await cache.lookup(bots[0]!, SHARED, HOUR, true);
    expect(limited.problem?.reason).toBe('DiscordRateLimited');
    const others = await Promise.all(bots.slice(1).map((b) => cache.lookup(b, SHARED, HOUR, true)));
    expect(others.every((a) => a.problem?.reason === 'DiscordRateLimited')).toBe(true);
    expect(others.every((a) => a.nextCheckMs > 50_000)).toBe(true);
    expect(calls(SHARED)).toHaveLength(2);
  });

  test('a rotated token is asked anew; the old entry goes when no bot uses it', async () => {
    const cache = new GatewayBotCache(sim.apiUrl);
    const before = calls(TOKEN).length;
    await cache.lookup('ns/a', SHARED, HOUR);
    await cache.lookup('ns/a', TOKEN, HOUR);
    expect(calls(TOKEN)).toHaveLength(before + 1);
    // Forgotten, then back with the same token: nothing was kept for it.
    cache.forget('ns/a');
    await cache.lookup('ns/a', TOKEN, HOUR);
    expect(calls(TOKEN)).toHaveLength(before + 2);
  });
});
