// The periodic role sync: one repeating task per community with rules, whichever worker sets it.
import type { WorkerServices } from '../../worker/handlers/bot-module.js';
import { ROLE_SYNC_TASK, roleSyncScheduleId } from './role-sync.js';

export const ROLE_SYNC_INTERVAL_ENV = 'SHARDWARDEN_ROLE_SYNC_INTERVAL_SECONDS';

export function roleSyncIntervalMs(env: NodeJS.ProcessEnv): number {
  return intervalSecondsMs(env, ROLE_SYNC_INTERVAL_ENV, 3_600);
}

/** An interval setting in seconds (at least 10), as milliseconds; a bad value stops the worker. */
export function intervalSecondsMs(env: NodeJS.ProcessEnv, name: string, defaultSeconds: number): number {
  const raw = env[name]?.trim();
  if (!raw) return defaultSeconds * 1000;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 10) throw new Error(`${name}="${raw}" must be an integer >= 10 (seconds)`);
  return n * 1000;
}

export async function scheduleRoleSync(services: WorkerServices, communityId: string): Promise<void> {
  await services.tasks.repeat(
    roleSyncScheduleId(communityId),
    roleSyncIntervalMs(services.env),
    ROLE_SYNC_TASK,
    {
      communityId,
    },
  );
}
