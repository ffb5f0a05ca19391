import { WorkQueue } from '../../operator/controller/work-queue.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** A queue of concurrency 1 whose first reconcile ('blocker') holds until released; records order. */
function blockedQueue(maxEventsAhead?: number) {
  const runs: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const q = new WorkQueue(
    async (key) => {
      runs.push(key);
      if (key === 'blocker') await held;
    },
    { concurrency: 1, maxEventsAhead },
  );
  q.start();
  q.add('blocker', 'timer');
  const settled = async (n: number) => {
    while (runs.length < n) await tick(1);
  };
  return { q, runs, release, settled };
}

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

  test('an event key goes ahead of the timer keys queued before it', async () => {
    const { q, runs, release, settled } = blockedQueue();
    for (const k of ['t1', 't2', 't3']) q.add(k, 'timer');
    q.add('edit');
    release();
    await settled(5);
    expect(runs).toEqual(['blocker', 'edit', 't1', 't2', 't3']);
    await q.stop();
  });

  test('timer keys are not starved: one goes after maxEventsAhead event keys in a row', async () => {
    const { q, runs, release, settled } = blockedQueue(2);
    for (const k of ['t1', 't2']) q.add(k, 'timer');
    for (const k of ['e1', 'e2', 'e3', 'e4', 'e5']) q.add(k);
    release();
    await settled(8);
    expect(runs).toEqual(['blocker', 'e1', 'e2', 't1', 'e3', 'e4', 't2', 'e5']);
    await q.stop();
  });

  test('a queued timer key an event adds again moves ahead and still runs once', async () => {
    const { q, runs, release, settled } = blockedQueue();
    for (const k of ['t1', 't2', 'bot']) q.add(k, 'timer');
    q.add('bot');
    q.add('bot', 'timer');
    expect(q.depth()).toBe(3);
    release();
    await settled(4);
    await tick(10);
    expect(runs).toEqual(['blocker', 'bot', 't1', 't2']);
    await q.stop();
  });

  test('an event during its own reconcile runs the key again ahead of timer keys', async () => {
    const { q, runs, release, settled } = blockedQueue();
    q.add('t1', 'timer');
    q.add('blocker');
    release();
    await settled(3);
    expect(runs).toEqual(['blocker', 'blocker', 't1']);
    await q.stop();
  });

  test('a fired requeueAfter timer and a backoff retry queue behind an edit', async () => {
    const { q, runs, release, settled } = blockedQueue();
    q.addAfter('refresh', 1);
    q.addRateLimited('retry');
    while (q.depth() < 2) await tick(5);
    q.add('edit');
    release();
    await settled(4);
    expect(runs).toEqual(['blocker', 'edit', 'refresh', 'retry']);
    await q.stop();
  });
});
