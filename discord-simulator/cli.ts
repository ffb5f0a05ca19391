#!/usr/bin/env node
// Standalone Discord simulator for demos and benchmarks:
//   node dist/discord-simulator/cli.js --port 8090 --guilds 3000 --seed 7
// Prints one JSON line with its URLs and token, then serves until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { DiscordSimulator } from './simulator.js';
import { serveStandalone } from './standalone.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    guilds: { type: 'string', default: '100' },
    members: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    token: { type: 'string' },
    'max-concurrency': { type: 'string', default: '1' },
    'identify-window-ms': { type: 'string', default: '5000' },
    'heartbeat-interval-ms': { type: 'string', default: '41250' },
    'global-rate-limit': { type: 'string', default: '50' },
    'guilds-per-shard': { type: 'string', default: '1000' },
  },
});

function num(name: keyof typeof values): number {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a non-negative number, got ${String(values[name])}`);
    process.exit(2);
  }
  return n;
}

const sim = await DiscordSimulator.start({
  host: values.host,
  port: num('port'),
  seed: num('seed'),
  guilds: num('guilds'),
  guildSize: { members: num('members') },
  tokens: values.token ? [values.token] : undefined,
  guildsPerRecommendedShard: num('guilds-per-shard'),
  gateway: {
    maxConcurrency: num('max-concurrency'),
    identifyWindowMs: num('identify-window-ms'),
    heartbeatIntervalMs: num('heartbeat-interval-ms'),
  },
  rest: { globalPerSecond: num('global-rate-limit') },
});
serveStandalone(sim);
