// Milestones of a gateway process's start, one log line each: when it happened (epoch ms), when
// the process itself started, and the CPU the process had used by then. A cold start can then be
// read from the pods' logs (benchmarks/cold-start.ts does), and the CPU figures say where the
// start's work goes even on a loaded machine, where wall-clock times only say how long it waited.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../observability/logger.js';

/** The message of every milestone line (what a reader of the logs matches on). */
export const STARTUP_MILESTONE = 'startup milestone';

export type StartupMilestone =
  /** Primary: its cluster processes forked. */
  | 'clusters forked'
  /** Cluster: every module of the cluster process loaded (its entry module evaluated). */
  | 'modules loaded'
  /** Cluster: Kurasuta's IPC to the primary connected, the cluster's own start begins. */
  | 'launched'
  /** Cluster: its Redis connection ready. */
  | 'redis connected'
  /** Cluster: its first shard got an identify turn (the IDENTIFY is sent right after). */
  | 'first identify'
  /** Cluster: every shard of the process READY (or resumed). */
  | 'shards ready';

export interface StartupMilestoneFields {
  milestone: StartupMilestone;
  /** Epoch ms of the milestone. */
  at: number;
  /** Epoch ms the process started (Node's time origin). */
  processStartedAt: number;
  /** CPU (user + system) the process had used by then, ms. */
  cpuMs: number;
}

/** The fields of a milestone that happened `now` (performance.now()) with `cpu` used by then. */
export function startupMilestone(
  milestone: StartupMilestone,
  now = performance.now(),
  cpu = process.cpuUsage(),
): StartupMilestoneFields {
  return {
    milestone,
    at: Math.round(performance.timeOrigin + now),
    processStartedAt: Math.round(performance.timeOrigin),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  };
}

/** Logs a milestone: one that happens now, or one taken earlier (before the logger existed). */
export function logStartupMilestone(log: Logger, milestone: StartupMilestone | StartupMilestoneFields): void {
  log.info(typeof milestone === 'string' ? startupMilestone(milestone) : milestone, STARTUP_MILESTONE);
}
