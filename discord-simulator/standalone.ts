// A simulator running as its own process (the CLI, benchmark helpers): one JSON line with its
// URLs and token on stdout, then serve until SIGINT/SIGTERM.
import type { DiscordSimulator } from './simulator.js';

export function serveStandalone(sim: DiscordSimulator): void {
  // The token is the simulator's own, made up for local use; printing it is how clients learn it.
  console.log(
    JSON.stringify({
      apiUrl: sim.apiUrl,
      gatewayUrl: sim.gatewayUrl,
      controlUrl: sim.controlUrl,
      token: sim.token,
    }),
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void sim.stop().then(() => process.exit(0)));
}
