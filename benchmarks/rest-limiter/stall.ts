// The longest stall of this process's event loop while a piece of work runs, from a 10 ms
// ticker that counts from the start (perf_hooks' monitorEventLoopDelay does not count a stall
// before its first tick: it missed a 400 ms block right after enable() on Node 24). A stall
// holds back every request in flight, as a network delays some requests more than others:
// the REST limiter's margin covers such differences only up to its size.
const TICK_MS = 10;

/** What `work` resolved to, and the longest stall (ms) while it ran. */
export async function longestStall<T>(work: () => Promise<T>): Promise<[T, number]> {
  let last = performance.now();
  let longest = 0;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last - TICK_MS);
    last = now;
  };
  const ticker = setInterval(tick, TICK_MS);
  const result = await work().finally(() => {
    clearInterval(ticker);
    tick(); // a stall after the last tick
  });
  return [result, longest];
}
