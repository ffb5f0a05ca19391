#!/usr/bin/env node
// One entrypoint for the one image: `shardwarden <command> [flags]`.
const commands: Record<string, () => Promise<void>> = {
  operator: async () => (await import('../operator/main.js')).runOperator(process.argv.slice(3), process.env),
  gateway: async () => (await import('../bot/gateway/main.js')).runGateway(process.env),
};

const name = process.argv[2];
const command = name ? commands[name] : undefined;
if (name === '--help' || name === 'help') {
  console.log(
    `usage: shardwarden <${Object.keys(commands).join('|')}> [flags]\n  shardwarden operator --help   operator flags\n  gateway: configured by environment, see docs/gateway.md`,
  );
  process.exit(0);
}
if (!command) {
  console.error(
    `usage: shardwarden <${Object.keys(commands).join('|')}> [flags]${name ? `\nunknown command "${name}"` : ''}`,
  );
  process.exit(2);
}
await command();
