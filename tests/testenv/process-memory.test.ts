import { memoryMb, rssMb } from '../../testenv/index.js';

describe('memoryMb (benchmark memory figures from /proc)', () => {
  test('RSS agrees with /proc/<pid>/status and the anonymous part is a share of it', () => {
    const m = memoryMb(process.pid);
    expect(Math.abs(m.rss - rssMb(process.pid))).toBeLessThan(16);
    expect(m.anonymous).toBeGreaterThan(0);
    expect(m.anonymous).toBeLessThan(m.rss);
  });

  test('memory the process writes shows up as anonymous memory', () => {
    const before = memoryMb(process.pid).anonymous;
    const block = Buffer.alloc(64 * 1024 * 1024, 1); // filled, so every page is touched
    const after = memoryMb(process.pid).anonymous;
    expect(block[block.length - 1]).toBe(1);
    expect(after - before).toBeGreaterThan(48);
  });

  test('a process that does not exist is an error, not a zero', () => {
    expect(() => memoryMb(2 ** 22 + 1)).toThrow(/ENOENT/);
  });
});
