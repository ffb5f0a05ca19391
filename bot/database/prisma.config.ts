// Prisma CLI configuration, for users with internet access (Prisma 7's migrate commands
// download a native schema engine): `npx prisma <command> --config bot/database/prisma.config.ts`.
// DATABASE_URL is needed only by commands that touch a database (migrate deploy|status|diff);
// SHADOW_DATABASE_URL (an empty scratch database) only by `migrate diff --from-migrations`.
// `generate` needs neither. See docs/database.md.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'schema.prisma',
  migrations: { path: 'migrations' },
  datasource: {
    url: process.env.DATABASE_URL ?? '',
    ...(process.env.SHADOW_DATABASE_URL ? { shadowDatabaseUrl: process.env.SHADOW_DATABASE_URL } : {}),
  },
});
