import fc from 'fast-check';
import { backlogOf, dueDelayedMaxScore } from '../../operator/autoscaling/backlog-reader.js';
import {
  decideReplicas,
  recommendReplicas,
  type AutoscalerSettings,
  type Recommendation,
} from '../../operator/autoscaling/worker-autoscaler.js';
import { parseRedisTarget } from '../../bot/configuration/redis-target.js';
import { kedaConnection } from '../../operator/rendering/keda.js';
import { workerShutdownTimeoutMs } from '../../operator/rendering/worker.js';

const settings: AutoscalerSettings = {
  minReplicas: 1,
  maxReplicas: 10,
  targetJobsPerReplica: 100,
  scaleDownStabilizationSeconds: 60,
};

const settingsArb = fc
  .record({
    minReplicas: fc.integer({ min: 0, max: 20 }),
    span: fc.integer({ min: 0, max: 30 }),
    targetJobsPerReplica: fc.integer({ min: 1, max: 1000 }),
    scaleDownStabilizationSeconds: fc.integer({ min: 0, max: 600 }),
  })
  .map(({ span, ...s }) => ({ ...s, maxReplicas: Math.max(1, s.minReplicas + span) }));

const keda = (url: string) => kedaConnection(parseRedisTarget(url, 'the Redis URL'));
describe('worker autoscaler decision', () => {
  test('recommendation is ceil(backlog / target), within the bounds', () => {
    expect(recommendReplicas(0, settings)).toBe(1);
    expect(recommendReplicas(100, settings)).toBe(1);
    expect(recommendReplicas(101, settings)).toBe(2);
    expect(recommendReplicas(950, settings)).toBe(10);
    expect(recommendReplicas(50_000, settings)).toBe(10);
    expect(recommendReplicas(0, { ...settings, minReplicas: 0 })).toBe(0);
  });

  test('scales up at once, whatever the history', () => {
    const d = decideReplicas({ settings, backlog: 420, currentReplicas: 2, now: 1_000_000, history: [] });
    expect(d).toMatchObject({ replicas: 5, recommended: 5, reason: 'ScaledUp' });
  });

  test('scales down only when the window has no higher recommendation', () => {
    let history: Recommendation[] = [];
    let replicas = 5;
    const step = (t: number, backlog: number) => {
      const d = decideReplicas({ settings, backlog, currentReplicas: replicas, now: t * 1000, history });
      history = d.history;
      replicas = d.replicas;
      return d;
    };
    expect(step(0, 500).reason).toBe('AtDesired');
    const d = step(10, 0);
    expect(d).toMatchObject({
      replicas: 5,
      recommended: 1,
      reason: 'StabilizingScaleDown',
      scaleDownAt: 60_000,
    });
    expect(step(30, 250)).toMatchObject({ replicas: 5, reason: 'StabilizingScaleDown' });
    expect(step(59, 0).replicas).toBe(5);
    // 0 s's 5 has left the window; 30 s's 3 is the highest left.
    expect(step(61, 0)).toMatchObject({ replicas: 3, reason: 'ScaledDown' });
    expect(step(89, 0).replicas).toBe(3);
    expect(step(91, 0)).toMatchObject({ replicas: 1, reason: 'ScaledDown' });
  });

  test('after a restart (no history) the current size holds for a whole window', () => {
    const d = decideReplicas({ settings, backlog: 0, currentReplicas: 4, now: 5_000, history: [] });
    expect(d).toMatchObject({ replicas: 4, reason: 'StabilizingScaleDown', scaleDownAt: 65_000 });
  });

  test('bounds win over everything: a current size outside them is corrected at once', () => {
    expect(decideReplicas({ settings, backlog: 0, currentReplicas: 30, now: 0, history: [] })).toMatchObject({
      replicas: 10,
      reason: 'ScaledDown',
    });
    expect(
      decideReplicas({
        settings: { ...settings, minReplicas: 3 },
        backlog: 0,
        currentReplicas: 1,
        now: 0,
        history: [],
      }),
    ).toMatchObject({ replicas: 3, reason: 'ScaledUp' });
  });

  test('properties: bounded, prompt up, never down before the window, history stays small', () => {
    fc.assert(
      fc.property(
        settingsArb,
        fc.integer({ min: 0, max: 40 }),
        fc.array(
          fc.record({
            dt: fc.integer({ min: 0, max: 120_000 }),
            backlog: fc.integer({ min: 0, max: 50_000 }),
          }),
          {
            minLength: 1,
            maxLength: 40,
          },
        ),
        (s, start, steps) => {
          let history: Recommendation[] = [];
          let replicas = start;
          let now = 1_000_000;
          const seen: Recommendation[] = [{ at: now, replicas: start }];
          for (const { dt, backlog } of steps) {
            now += dt;
            const d = decideReplicas({ settings: s, backlog, currentReplicas: replicas, now, history });
            const rec = recommendReplicas(backlog, s);
            seen.push({ at: now, replicas: rec });
            // Within bounds.
            expect(d.replicas).toBeGreaterThanOrEqual(s.minReplicas);
            expect(d.replicas).toBeLessThanOrEqual(s.maxReplicas);
            // Never below what the backlog asks for now.
            expect(d.replicas).toBeGreaterThanOrEqual(rec);
            // Below the current size only to the highest recommendation of the window.
            const bounded = Math.min(s.maxReplicas, Math.max(s.minReplicas, replicas));
            if (d.replicas < bounded) {
              const windowMax = Math.max(
                rec,
                ...seen
                  .filter((r) => r.at > now - s.scaleDownStabilizationSeconds * 1000)
                  .map((r) => r.replicas),
              );
              expect(d.replicas).toBe(Math.min(s.maxReplicas, Math.max(s.minReplicas, windowMax)));
            }
            expect(d.history.length).toBeLessThanOrEqual(s.maxReplicas + 2);
            history = d.history;
            replicas = d.replicas;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('backlog', () => {
  const q = (waiting: number, prioritized: number, dueDelayed: number, paused = false) => ({
    queue: 'q',
    waiting,
    prioritized,
    dueDelayed,
    paused,
  });

  test('waiting + prioritized + due delayed over all queues; a paused queue counts nothing', () => {
    expect(backlogOf([q(3, 2, 1), q(10, 0, 0)])).toBe(16);
    expect(backlogOf([q(3, 2, 1), q(10, 0, 0, true)])).toBe(6);
  });

  test("a delayed job is due when its score is at most BullMQ's promotion bound", () => {
    // bullmq stores delayed jobs at dueMs * 0x1000 + a counter below 0x1000.
    const score = (dueMs: number, counter: number) => dueMs * 0x1000 + counter;
    expect(score(1_000, 0xfff)).toBeLessThanOrEqual(dueDelayedMaxScore(1_000));
    expect(score(1_001, 0)).toBeGreaterThan(dueDelayedMaxScore(1_000));
  });
});

describe('KEDA connection and worker grace period', () => {
  test('a Redis URL splits into what the KEDA redis scaler wants', () => {
    expect(keda('redis://:s3cret@redis.bots:6380/2')).toEqual({
      address: 'redis.bots:6380',
      password: 's3cret',
      databaseIndex: 2,
      tls: false,
    });
    expect(keda('rediss://user:p%40ss@r.example')).toEqual({
      address: 'r.example:6379',
      username: 'user',
      password: 'p@ss',
      databaseIndex: 0,
      tls: true,
    });
    expect(keda('redis://[::1]:7000')).toMatchObject({ address: '[::1]:7000' });
  });

  test('a Redis Cluster URL gives the addresses of the KEDA redis-cluster scaler', () => {
    expect(keda('rediss+cluster://app:s3cret@r-0.redis:7000,r-1.redis,[::1]:7002')).toEqual({
      address: 'r-0.redis:7000,r-1.redis:6379,[::1]:7002',
      cluster: true,
      username: 'app',
      password: 's3cret',
      databaseIndex: 0,
      tls: true,
    });
  });

  test('the worker stops taking jobs with time to spare before the kubelet kills it', () => {
    expect(workerShutdownTimeoutMs(60)).toBe(50_000);
    expect(workerShutdownTimeoutMs(10)).toBe(8_333);
    for (const s of [10, 30, 61, 600, 3600]) {
      expect(workerShutdownTimeoutMs(s)).toBeLessThan(s * 1000);
      expect(workerShutdownTimeoutMs(s)).toBeGreaterThanOrEqual(s * 1000 - 10_000);
    }
  });
});
