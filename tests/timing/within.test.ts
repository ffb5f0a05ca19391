import { within } from '../../bot/timing/within.js';

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe('within (a wait bounded by a deadline)', () => {
  test('the value when the promise settles first, the fallback when the deadline passes first', async () => {
    await expect(within(after(5, 'done'), 1_000, () => 'late')).resolves.toBe('done');
    await expect(within(after(1_000, 'done'), 5, () => 'late')).resolves.toBe('late');
  });

  test('a rejection passes through; a throwing fallback rejects', async () => {
    await expect(within(Promise.reject(new Error('refused')), 1_000, () => 'late')).rejects.toThrow(
      'refused',
    );
    await expect(
      within(after(1_000, 'done'), 5, () => {
        throw new Error('deadline passed');
      }),
    ).rejects.toThrow('deadline passed');
  });

  test('the fallback is not called once the promise has won', async () => {
    let called = 0;
    await within(after(1, 'done'), 20, () => (called += 1));
    await after(40, null);
    expect(called).toBe(0);
  });
});
