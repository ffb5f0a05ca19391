// Waiting for something, but not past a deadline: the one way the runtime bounds a wait
// (flushes, drains, probes, shutdowns), so each timer is cleared as soon as the race is decided.

/**
 * Resolves with `promise`'s value, or, if `ms` pass first, with what `onTimeout` returns (or
 * rejects with what it throws). A rejection of `promise` before the deadline passes through.
 */
export async function within<T, U>(promise: Promise<T>, ms: number, onTimeout: () => U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<U>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (err) {
        reject(err);
      }
    }, ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
