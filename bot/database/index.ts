// What domain code imports from the database layer.
export {
  createDatabase,
  DatabaseConfigError,
  DEFAULT_POOL_MAX,
  type Database,
  type DatabaseOptions,
  type TenantTx,
} from './database.js';
export { assertRowLevelSecurityApplies, UnsafeDatabaseRoleError } from './app-role.js';
export { migrate, runMigrateCommand, defaultMigrationsDir, type MigrateOptions } from './migrate.js';
export { MigrationError } from './migrations.js';
export { Prisma, PrismaClient, GateRuleKind } from './generated/client.js';
export type {
  Community,
  Member,
  Wallet,
  GateRule,
  RoleAssignment,
  VerificationNonce,
} from './generated/client.js';
