#!/usr/bin/env node
// One entrypoint for the one image: `shardwarden <command> [flags]`.
const commands: Record<string, () => Promise<void>> = {
  operator: async () => (await import('../operator/main.js')).runOperator(process.argv.slice(3), process.env),
  gateway: async () => (await import('../bot/gateway/main.js')).runGateway(process.env),
  worker: async () => (await import('../bot/worker/main.js')).runWorker(process.env),
  migrate: async () => (await import('../bot/database/migrate.js')).runMigrateCommand(process.env),
  'register-commands': async () =>
    (await import('../bot/worker/register-commands.js')).runRegisterCommands(process.env),
};

const name = process.argv[2];
const command = name ? commands[name] : undefined;
if (name === '--help' || name === 'help') {
  console.log(
    `usage: shardwarden <${Object.keys(commands).join('|')}> [flags]\n  shardwarden operator --help   operator flags\n  gateway, worker, migrate, register-commands: configured by environment, see docs/gateway.md and docs/workers.md`,
  );
  process.exit(0);
}
if (!command) {
  console.error(
    `usage: shardwarden <${Object.keys(commands).join('|')}> [flags]${name ? `\nunknown command "${name}"` : ''}`,
  );
  process.exit(2);
}
try {
  await command();
} catch (err) {
  // One line, no stack: the commands' errors already say what is wrong (and never carry secrets).
  console.error(`${name}: ${(err as Error).message}`);
  process.exit(1);
}
