// When the runtime takes a queue consumer for stuck (pure): jobs waiting, room for them, and no
// job started for STUCK_AFTER_MS. The replacement itself: stuck-consumer-replacement.test.ts.
import {
  idleWithWorkSince,
  isStuck,
  STUCK_AFTER_MS,
  WATCH_EVERY_MS,
  worthCounting,
  type ConsumerActivity,
} from '../../bot/worker/processing/stuck-consumer.js';

const idle: ConsumerActivity = { inFlight: 0, concurrency: 2, lastStartedAt: 1_000 };

describe('a stuck queue consumer', () => {
  test('is not idle with work when nothing waits, or when it has no room', () => {
    expect(idleWithWorkSince(500, idle, 0, 10_000)).toBeUndefined();
    expect(idleWithWorkSince(500, { ...idle, inFlight: 2 }, 5, 10_000)).toBeUndefined();
  });

  test('is idle with work from the first look that sees jobs waiting, not from its last job', () => {
    // A long quiet spell before the jobs came is not time spent stuck.
    expect(idleWithWorkSince(undefined, idle, 3, 50_000)).toBe(50_000);
    expect(idleWithWorkSince(50_000, idle, 3, 55_000)).toBe(50_000);
  });

  test('a job started since the previous look moves the time on', () => {
    expect(idleWithWorkSince(50_000, { ...idle, lastStartedAt: 53_000 }, 3, 55_000)).toBe(53_000);
  });

  test('is stuck once that has lasted STUCK_AFTER_MS', () => {
    expect(isStuck(undefined, 1e9)).toBe(false);
    expect(isStuck(50_000, 50_000 + STUCK_AFTER_MS - 1)).toBe(false);
    expect(isStuck(50_000, 50_000 + STUCK_AFTER_MS)).toBe(true);
  });

  test('is not counted for while it is full or has just started a job', () => {
    expect(worthCounting({ ...idle, inFlight: 2 }, 1e9)).toBe(false);
    expect(worthCounting(idle, idle.lastStartedAt + WATCH_EVERY_MS - 1)).toBe(false);
    expect(worthCounting(idle, idle.lastStartedAt + WATCH_EVERY_MS)).toBe(true);
  });
});
