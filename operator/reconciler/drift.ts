// Whether a live object still carries every field the operator renders, the way the apiserver
// stores it. Fields others add (defaults, other managers) do not count; a field someone changed
// by hand (`kubectl edit`, `kubectl scale`) does, so the reconciler applies again and the object
// converges back, while an untouched object costs no request at all.

import { QUANTITY_PATTERN } from '../api/v1alpha1/schema.js';

type Named = { name: string };

/** Lists whose items carry a `name` are matched by it (as server-side apply merges them). */
const isNamedList = (items: unknown[]): items is Named[] =>
  items.length > 0 &&
  items.every(
    (i) => typeof i === 'object' && i !== null && typeof (i as { name?: unknown }).name === 'string',
  );

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isEmpty = (v: unknown) =>
  (Array.isArray(v) && v.length === 0) || (isMap(v) && Object.keys(v).length === 0);

const BINARY_SUFFIX: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL_SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

const QUANTITY = new RegExp(QUANTITY_PATTERN);

/** The value of a Kubernetes quantity ("500m", "1Gi", "1e3", 2); undefined when it is not one. */
export function quantityValue(q: unknown): number | undefined {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string' || !QUANTITY.test(q)) return undefined;
  const [, number, suffix] = /^([+-]?[0-9.]+)(.*)$/.exec(q)!;
  if (suffix! in BINARY_SUFFIX) return Number(number) * BINARY_SUFFIX[suffix!]!;
  if (suffix! in DECIMAL_SUFFIX) return Number(number) * DECIMAL_SUFFIX[suffix!]!;
  return Number(q); // an exponent: 1e3
}

/** The apiserver rewrites quantities in canonical form ("0.5" is stored as "500m"). */
function sameQuantity(a: unknown, b: unknown): boolean {
  const x = quantityValue(a);
  const y = quantityValue(b);
  return x !== undefined && y !== undefined && Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y));
}

/** Where the live object differs, and the merge patch that puts the rendered fields back. */
interface Drift {
  path: string;
  patch: unknown;
}

/**
 * Compares one rendered node with its live counterpart. The patch of a list is the whole list
 * (merge patches replace lists): the rendered items, then the live items of other names.
 */
function drift(desired: unknown, live: unknown, path: string, quantities: boolean): Drift | undefined {
  // The apiserver omits empty strings, lists and maps (omitempty): absent is the same.
  if (desired === live || (live === undefined && (isEmpty(desired) || desired === ''))) return undefined;
  if (Array.isArray(desired)) {
    const differs = (): string | undefined => {
      if (!Array.isArray(live)) return path;
      if (isNamedList(desired)) {
        for (const item of desired) {
          const match = live.find((l) => (l as Partial<Named> | null)?.name === item.name);
          const d = drift(item, match, `${path}[${item.name}]`, quantities);
          if (d) return d.path;
        }
        return undefined;
      }
      if (desired.length !== live.length) return path;
      return desired.map((item, i) => drift(item, live[i], `${path}[${i}]`, quantities)).find(Boolean)?.path;
    };
    const at = differs();
    if (!at) return undefined;
    const names = new Set(isNamedList(desired) ? desired.map((i) => i.name) : []);
    const others =
      names.size > 0 && Array.isArray(live)
        ? live.filter((l) => !names.has((l as Partial<Named> | null)?.name ?? ''))
        : [];
    return { path: at, patch: [...desired, ...others] };
  }
  if (isMap(desired)) {
    if (!isMap(live)) return { path: path || '.', patch: desired };
    let first: string | undefined;
    const patch: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(desired)) {
      if (value === undefined) continue;
      const d = drift(value, live[key], `${path}.${key}`, quantities || key === 'resources');
      if (!d) continue;
      first ??= d.path;
      patch[key] = d.patch;
    }
    return first ? { path: first, patch } : undefined;
  }
  return quantities && sameQuantity(desired, live) ? undefined : { path: path || '.', patch: desired };
}

/**
 * The path of the first rendered field the live object does not carry as rendered, or undefined
 * when it carries them all. Quantities are compared by value below `resources`.
 */
export function firstDifference(desired: unknown, live: unknown): string | undefined {
  return drift(comparable(desired), live, '', false)?.path;
}

/**
 * The rendered object without apiVersion and kind: objects from an informer's first list carry
 * neither (the apiserver leaves them out of list items), and they are not ours to repair.
 */
function comparable(desired: unknown): unknown {
  if (!isMap(desired)) return desired;
  const { apiVersion: _apiVersion, kind: _kind, ...rest } = desired;
  return rest;
}

/**
 * A JSON merge patch that restores every rendered field, for what server-side apply cannot
 * restore by itself: an item of a keyed list whose key was edited (a Service port number) is,
 * to apply, another item, so it would add ours beside it. Undefined when nothing differs.
 */
export function repairPatch(desired: unknown, live: unknown): Record<string, unknown> | undefined {
  const d = drift(comparable(desired), live, '', false);
  return d && isMap(d.patch) ? d.patch : undefined;
}
