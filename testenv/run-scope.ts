// What a program that starts servers (the demo, each benchmark) uses to stop every one of them
// however it ends: at its end, on an error nothing caught (a failed top-level await), and on
// SIGINT/SIGTERM (Ctrl-C, a CI timeout). Without it, Ctrl-C left etcd, kube-apiserver, the
// controller-manager and the operator running.

export interface RunScope {
  /** Aborted on SIGINT/SIGTERM, for work that can stop early (the demo's scenario). */
  readonly signal: AbortSignal;
  /** Registers how to stop `thing` and returns it; stops run in reverse order. */
  own<T>(thing: T, stop: (thing: T) => unknown): T;
  /** Registers a step to run when the scope stops (after everything registered later). */
  defer(step: () => unknown): void;
  /** A point to stop back to: stopBackTo(mark) stops what was registered after it. */
  mark(): number;
  /**
   * Runs the steps registered since `mark`, newest first (a start that failed and is retried
   * another way); resolves to the errors of the steps that failed.
   */
  stopBackTo(mark: number): Promise<Error[]>;
  /**
   * Runs every registered step once, newest first; a failing step does not stop the others.
   * Resolves to the errors of the steps that failed: a program must not claim all stopped.
   */
  stop(): Promise<Error[]>;
}

export interface RunScopeOptions {
  /** Told about an interruption before anything stops (e.g. to say so). */
  onInterrupt?: (signal: NodeJS.Signals) => void;
  /** Told about an error nothing caught, before anything stops. */
  onError?: (err: unknown) => void;
  /** Told, once everything has been stopped, which steps failed (none: nothing is left). */
  onStopped?: (errors: Error[]) => void;
}

/**
 * Whether `err` (or its cause) is a child process stopped by Ctrl-C or SIGTERM: a blocking build
 * dies of the signal before the event loop gets to the scope's handler, so the scope's signal is
 * not aborted yet. Such an error is an interruption, not a failure (nor a reason to fall back).
 */
export function interruptedChild(err: unknown): boolean {
  for (
    let e = err as { signal?: unknown; status?: unknown; cause?: unknown } | undefined;
    e;
    e = e.cause as typeof e
  )
    if (e.signal === 'SIGINT' || e.signal === 'SIGTERM' || e.status === 130 || e.status === 143) return true;
  return false;
}

/** The exit code of a program stopped by SIGINT or SIGTERM. */
export const INTERRUPTED_EXIT_CODE = 130;

/**
 * A scope for the whole process: SIGINT/SIGTERM and uncaught errors stop what it owns and exit
 * (130 and 1); otherwise the program calls stop() itself when it is done.
 */
export function runScope(options: RunScopeOptions = {}): RunScope {
  const steps: (() => unknown)[] = [];
  const abort = new AbortController();
  let stopping: Promise<Error[]> | undefined;
  const stopBackTo = async (mark: number) => {
    const errors: Error[] = [];
    while (steps.length > mark) {
      const step = steps.pop()!;
      try {
        await step();
      } catch (err) {
        // Stopping the rest matters more than why one did not stop; reported at the end.
        errors.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return errors;
  };
  const stop = () =>
    (stopping ??= (async () => {
      const errors = await stopBackTo(0);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('uncaughtException', onError);
      options.onStopped?.(errors);
      return errors;
    })());
  // A failed stop turns an otherwise clean exit into a failure.
  const exitAfterStop = (code: number) =>
    void stop().then(
      (errors) => process.exit(code === 0 && errors.length > 0 ? 1 : code),
      () => process.exit(code || 1),
    );
  function onSignal(signal: NodeJS.Signals): void {
    if (abort.signal.aborted) return; // a second Ctrl-C while stopping
    options.onInterrupt?.(signal);
    abort.abort();
    exitAfterStop(INTERRUPTED_EXIT_CODE);
  }
  function onError(err: unknown): void {
    (options.onError ?? ((e: unknown) => console.error(e)))(err);
    exitAfterStop(1);
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', onError);
  const defer = (step: () => unknown) => {
    steps.push(step);
  };
  return {
    signal: abort.signal,
    own(thing, stopThing) {
      defer(() => stopThing(thing));
      return thing;
    },
    defer,
    mark: () => steps.length,
    stopBackTo,
    stop,
  };
}

/**
 * `primary()`, or, when it fails and `fallsBack(err)` allows it, what it registered in `scope`
 * stopped and `fallback(err)` instead (the demo's `auto`: the real node, else kwok). A failure
 * to stop what `primary` started is thrown rather than building on a half-stopped machine.
 */
export async function startOrFallBack<T>(
  scope: RunScope,
  primary: () => Promise<T>,
  fallsBack: (err: unknown) => boolean,
  fallback: (err: Error) => Promise<T>,
): Promise<T> {
  const mark = scope.mark();
  try {
    return await primary();
  } catch (err) {
    if (!fallsBack(err)) throw err;
    const leftovers = await scope.stopBackTo(mark);
    if (leftovers.length)
      throw new Error(`stopping the failed start: ${leftovers.map((e) => e.message).join('; ')}`, {
        cause: err,
      });
    return fallback(err instanceof Error ? err : new Error(String(err)));
  }
}
