// Cooldowns on a real Redis: held across clients, and failing open (quickly) when Redis is down.
import { Redis } from 'ioredis';
import { Cooldowns } from '../../bot/worker/interactions/cooldowns.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';

describe('cooldowns', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(server.url, { maxRetriesPerRequest: null });
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const key = (...parts: (string | number)[]) => ['test', ...parts].join(':');
  beforeAll(async () => {
    server = await startRedis({ persistent: true });
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await server.close();
  });

  test('a use holds for every worker until it expires; other members and commands are free', async () => {
    const a = new Cooldowns(client(), key);
    const b = new Cooldowns(client(), key);
    // 5 s: long enough that a loaded machine cannot let it run out between these calls.
    expect(await a.take('gate', 'u1', 5)).toBe(0);
    const left = await b.take('gate', 'u1', 5);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(5_000);
    expect(await b.take('gate', 'u2', 5)).toBe(0);
    expect(await b.take('status', 'u1', 5)).toBe(0);
    // It runs out: the first take after that is free again (and starts a new cooldown).
    await waitUntil('the cooldown ran out', async () => (await b.take('gate', 'u1', 5)) === 0, {
      timeoutMs: 30_000,
      intervalMs: 250,
    });
    expect(await a.take('gate', 'u1', 5)).toBeGreaterThan(0);
  });

  test('Redis down: the check gives up after its timeout and lets the command run', async () => {
    let timeouts = 0;
    const c = new Cooldowns(client(), key, 300, () => (timeouts += 1));
    expect(await c.take('verify', 'u9', 60)).toBe(0);
    await server.stop();
    try {
      const started = Date.now();
      expect(await c.take('verify', 'u9', 60)).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(timeouts).toBe(1);
    } finally {
      await server.start();
    }
  });
});
