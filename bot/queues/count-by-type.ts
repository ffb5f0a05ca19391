/** How many dispatches of each type: one counter update per type and batch, not per dispatch. */
export function countByType(dispatches: readonly { t: string }[]): Map<string, number> {
  const perType = new Map<string, number>();
  for (const d of dispatches) perType.set(d.t, (perType.get(d.t) ?? 0) + 1);
  return perType;
}
