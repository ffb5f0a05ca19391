// Prisma CLI configuration: `prisma generate|migrate deploy|migrate diff --config bot/database/prisma.config.ts`.
// DATABASE_URL is read only by the commands that need a database (migrate), so `generate`
// works without it.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'schema.prisma',
  migrations: { path: 'migrations' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
