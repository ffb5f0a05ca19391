// The simulator as its own process (so benchmarks measure it apart from the clients), with
// the URLs and token it prints on its first line. Either the simulator's CLI with its flags, or
// (for settings the CLI has no flag for, such as channels and roles per guild) this module run
// as a script with the simulator's options as JSON.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SimulatorOptions } from '../discord-simulator/simulator.js';

export interface SimulatorInfo {
  apiUrl: string;
  gatewayUrl: string;
  controlUrl: string;
  token: string;
}

const CLI = fileURLToPath(new URL('../discord-simulator/cli.js', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

async function startChild(args: string[]): Promise<{ child: ChildProcess; info: SimulatorInfo }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const info = await new Promise<SimulatorInfo>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (line) =>
      resolve(JSON.parse(line) as SimulatorInfo),
    );
  });
  return { child, info };
}

export function startSimulatorProcess(args: string[]): Promise<{ child: ChildProcess; info: SimulatorInfo }> {
  return startChild([CLI, ...args]);
}

/** The simulator with any of its start options (JSON-serialisable ones), in its own process. */
export function startSimulatorWithOptions(
  options: SimulatorOptions,
): Promise<{ child: ChildProcess; info: SimulatorInfo }> {
  return startChild([SELF, JSON.stringify(options)]);
}

if (process.argv[1] === SELF) {
  const { DiscordSimulator } = await import('../discord-simulator/simulator.js');
  const { serveStandalone } = await import('../discord-simulator/standalone.js');
  const sim = await DiscordSimulator.start(JSON.parse(process.argv[2] ?? '{}') as SimulatorOptions);
  serveStandalone(sim);
}
