// The Builtin worker autoscaler's decision: a pure function of the backlog, the current
// replicas, the spec's bounds and the recent recommendations. It follows the HPA: scale up at
// once; scale down only to the highest recommendation of the stabilization window, so demand
// must stay lower for the whole window before workers are removed.

export interface AutoscalerSettings {
  minReplicas: number;
  maxReplicas: number;
  /** Queued jobs per replica (a batch of events is one job). */
  targetJobsPerReplica: number;
  scaleDownStabilizationSeconds: number;
}

/** One recommendation and when it was made (ms since epoch). */
export interface Recommendation {
  at: number;
  replicas: number;
}

export interface AutoscaleInput {
  settings: AutoscalerSettings;
  /** Jobs waiting across the bot's queues. */
  backlog: number;
  /** Replicas the Deployment has now (spec.replicas). */
  currentReplicas: number;
  now: number;
  /** Recommendations from earlier calls (the `history` of the previous decision). */
  history: readonly Recommendation[];
}

export type ScaleReason = 'ScaledUp' | 'ScaledDown' | 'StabilizingScaleDown' | 'AtDesired';

export interface AutoscaleDecision {
  /** What the backlog alone asks for, within the bounds. */
  recommended: number;
  /** What to write to the Deployment. */
  replicas: number;
  reason: ScaleReason;
  /** Recommendations to keep for the next call (those inside the window). */
  history: Recommendation[];
  /** While stabilizing: when the current replicas may drop if demand stays this low (ms). */
  scaleDownAt?: number;
}

export const clampReplicas = (n: number, s: Pick<AutoscalerSettings, 'minReplicas' | 'maxReplicas'>) =>
  Math.min(s.maxReplicas, Math.max(s.minReplicas, n));

/** ceil(backlog / target), within [minReplicas, maxReplicas]. */
export function recommendReplicas(backlog: number, settings: AutoscalerSettings): number {
  const raw = Math.ceil(Math.max(0, backlog) / Math.max(1, settings.targetJobsPerReplica));
  return clampReplicas(raw, settings);
}

export function decideReplicas(input: AutoscaleInput): AutoscaleDecision {
  const { settings, now } = input;
  const windowMs = settings.scaleDownStabilizationSeconds * 1000;
  const current = clampReplicas(input.currentReplicas, settings);
  const recommended = recommendReplicas(input.backlog, settings);
  // With no memory (first look, or an operator restart) the current size counts as a
  // recommendation made now, so a restart never shortens the window.
  const earlier = input.history.length > 0 ? input.history : [{ at: now, replicas: input.currentReplicas }];
  const history = dropDominated([
    ...earlier.filter((r) => r.at > now - windowMs && r.at <= now),
    { at: now, replicas: recommended },
  ]);
  const highest = clampReplicas(Math.max(...history.map((r) => r.replicas)), settings);
  const replicas = recommended > current ? recommended : Math.min(current, highest);
  if (replicas > input.currentReplicas) return { recommended, replicas, reason: 'ScaledUp', history };
  if (replicas < input.currentReplicas) return { recommended, replicas, reason: 'ScaledDown', history };
  if (recommended < replicas) {
    // The newest recommendation at or above the current size leaves the window last.
    const blocking = history.filter((r) => r.replicas >= replicas).map((r) => r.at);
    return {
      recommended,
      replicas,
      reason: 'StabilizingScaleDown',
      history,
      scaleDownAt: Math.max(...blocking) + windowMs,
    };
  }
  return { recommended, replicas, reason: 'AtDesired', history };
}

/**
 * Only the window's maximum matters, so a recommendation followed by one at least as high
 * can go: what is kept strictly decreases, at most maxReplicas entries whatever the window.
 */
function dropDominated(history: Recommendation[]): Recommendation[] {
  const kept: Recommendation[] = [];
  let highestLater = -Infinity;
  for (const r of [...history].sort((a, b) => b.at - a.at)) {
    if (r.replicas > highestLater) kept.unshift(r);
    highestLater = Math.max(highestLater, r.replicas);
  }
  return kept;
}
