// Standard Kubernetes conditions: set by type, and lastTransitionTime only moves when the
// status does, so rewriting the same condition is not a change.
import type { Condition } from '../api/v1alpha1/types.js';

export type ConditionType =
  'Ready' | 'Progressing' | 'Degraded' | 'WorkersScaled' | 'EventPartitionsDeferred';
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionInput {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function setCondition(
  existing: Condition[],
  next: ConditionInput,
  generation: number,
  now: Date,
): Condition[] {
  const old = existing.find((c) => c.type === next.type);
  const lastTransitionTime =
    old && old.status === next.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const condition: Condition = { ...next, observedGeneration: generation, lastTransitionTime };
  const others = existing.filter((c) => c.type !== next.type);
  const order: ConditionType[] = [
    'Ready',
    'Progressing',
    'Degraded',
    'WorkersScaled',
    'EventPartitionsDeferred',
  ];
  return [...others, condition].sort(
    (a, b) => order.indexOf(a.type as ConditionType) - order.indexOf(b.type as ConditionType),
  );
}

export function conditionOf(conditions: Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function withoutCondition(conditions: Condition[], type: ConditionType): Condition[] {
  return conditions.filter((c) => c.type !== type);
}
