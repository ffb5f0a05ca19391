// Token-gated community roles, built on the worker's extension point like any bot author's module:
// members link wallets by signing a one-time message, admins map on-chain holdings to roles, and
// a periodic (and on-demand) sync grants and removes them.
import { defineBotModule } from '../worker/handlers/bot-module.js';
import { gateCommand, rolesCommand, statusCommand, verifyCommand } from './commands/commands.js';
import {
  syncCommunity,
  ROLE_SYNC_TASK,
  roleSyncScheduleId,
  type RoleSyncData,
} from './role-sync/role-sync.js';
import { intervalSecondsMs, roleSyncIntervalMs, scheduleRoleSync } from './role-sync/schedule.js';
import { verificationRoutes } from './verification/verification-routes.js';
import {
  NONCE_PURGE_INTERVAL_ENV,
  NONCE_PURGE_TASK,
  purgeExpiredNonces,
} from './verification/wallet-verification.js';

const noncePurgeIntervalMs = (env: NodeJS.ProcessEnv) =>
  intervalSecondsMs(env, NONCE_PURGE_INTERVAL_ENV, 600);

export const tokenGatingModule = defineBotModule({
  name: 'token-gating',
  commands: [verifyCommand, gateCommand, rolesCommand, statusCommand],
  tasks: [
    {
      name: ROLE_SYNC_TASK,
      async run(data, services) {
        const d = data as RoleSyncData;
        if (typeof d?.communityId !== 'string') throw new Error('role-sync task without a communityId');
        await syncCommunity(services, d);
      },
    },
    {
      name: NONCE_PURGE_TASK,
      async run(_data, services) {
        if (!services.db) return;
        const deleted = await purgeExpiredNonces(services.db);
        if (deleted) services.logger.info({ deleted }, 'expired verification nonces deleted');
      },
    },
  ],
  events: [
    {
      // The bot left a server (not an outage, which sets `unavailable`): stop syncing it.
      type: 'GUILD_DELETE',
      async handle(event, services) {
        const p = event.payload as { id: string; unavailable?: boolean };
        if (!p.unavailable) await services.tasks.cancel(roleSyncScheduleId(p.id));
      },
    },
  ],
  routes: verificationRoutes,
  async setup(services) {
    roleSyncIntervalMs(services.env); // a bad interval stops the worker at start, not at the first rule
    const purgeEveryMs = noncePurgeIntervalMs(services.env);
    if (!services.db) return;
    await services.tasks.repeat(NONCE_PURGE_TASK, purgeEveryMs, NONCE_PURGE_TASK, {});
    // Repeating syncs are idempotent to re-declare; a worker that starts re-creates any lost one.
    const communities = await services.db.prisma.community.findMany({ select: { id: true } });
    for (const c of communities) await scheduleRoleSync(services, c.id);
  },
});

export default tokenGatingModule;
