// The `targets` every benchmark's JSON ends with (docs/benchmarks.md): one entry per target,
// judged from the figures of the same run. Reported, not enforced: an unmet target is
// `met: false`, not a failed run (a benchmark that fails on a correctness figure says so itself).

/** One target: what was measured, its value in this run, the target, and whether it was met. */
export interface Target {
  measure: string;
  value: number;
  target: string;
  met: boolean;
}

/** A kind of target: its symbol in the output and how a value is judged against the bound. */
const targetOf =
  (symbol: string, holds: (value: number, bound: number) => boolean) =>
  (measure: string, value: number, bound: number): Target => ({
    measure,
    value,
    target: `${symbol} ${bound}`,
    met: holds(value, bound),
  });

export const atMost = targetOf('<=', (value, max) => value <= max);
export const below = targetOf('<', (value, limit) => value < limit);
export const atLeast = targetOf('>=', (value, min) => value >= min);
export const equal = targetOf('=', (value, expected) => value === expected);

/** Prints a benchmark's figures as one JSON document whose last key is `targets`. */
export function printFigures(figures: Record<string, unknown>, targets: Target[]): void {
  console.log(JSON.stringify({ ...figures, targets }, null, 2));
}
