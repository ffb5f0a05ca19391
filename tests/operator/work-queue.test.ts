import { WorkQueue } from '../../operator/controller/work-queue.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  test('one reconcile per key at a time; an add during processing runs it once more afterwards', async () => {
    let active = 0;
    let maxActive = 0;
    const runs: string[] = [];
    let release!: () => void;
    const q = new WorkQueue(
      async (key) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        runs.push(key);
        if (runs.length === 1) await new Promise<void>((r) => (release = r));
        active -= 1;
      },
      { concurrency: 4 },
    );
    q.start();
    q.add('a');
    await tick();
    q.add('a');
    q.add('a');
    await tick();
    expect(runs).toEqual(['a']);
    release();
    await tick(10);
    expect(runs).toEqual(['a', 'a']);
    expect(maxActive).toBe(1);
    await q.stop();
  });

  test('different keys run in parallel up to the concurrency', async () => {
    let active = 0;
    let maxActive = 0;
    const q = new WorkQueue(
      async () => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        await tick(20);
        active -= 1;
      },
      { concurrency: 2 },
    );
    q.start();
    for (const k of ['a', 'b', 'c', 'd']) q.add(k);
    expect(q.depth()).toBe(2);
    await tick(80);
    expect(maxActive).toBe(2);
    await q.stop();
  });

  test('failures are retried with exponential backoff, and success resets it', async () => {
    const times: number[] = [];
    const q = new WorkQueue(
      async () => {
        times.push(Date.now());
        if (times.length < 4) throw new Error('boom');
      },
      { concurrency: 1, baseDelayMs: 20 },
    );
    q.start();
    q.add('k');
    await tick(400);
    expect(times).toHaveLength(4);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(18); // 20
    expect(gaps[1]).toBeGreaterThanOrEqual(38); // 40
    expect(gaps[2]).toBeGreaterThanOrEqual(78); // 80
    expect(q.addRateLimited('k')).toBe(20); // forgotten after the success
    await q.stop();
  });

  test('requeueAfter and addAfter keep only the earliest timer', async () => {
    const runs: number[] = [];
    const q = new WorkQueue(async () => void runs.push(Date.now()), { concurrency: 1 });
    q.start();
    const start = Date.now();
    q.addAfter('k', 200);
    q.addAfter('k', 30);
    q.addAfter('k', 100);
    await tick(250);
    expect(runs).toHaveLength(1);
    expect(runs[0]! - start).toBeLessThan(150);
    await q.stop();
  });

  test('stop() waits for in-flight work and takes no more', async () => {
    let finished = false;
    const q = new WorkQueue(
      async () => {
        await tick(30);
        finished = true;
      },
      { concurrency: 1 },
    );
    q.start();
    q.add('a');
    await tick();
    await q.stop();
    expect(finished).toBe(true);
    q.add('b');
    await tick(40);
    expect(q.depth()).toBe(1);
  });
});
