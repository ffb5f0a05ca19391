// The simulator as its own process (so benchmarks measure it apart from the clients), with
// the URLs and token it prints on its first line.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface SimulatorInfo {
  apiUrl: string;
  gatewayUrl: string;
  controlUrl: string;
  token: string;
}

const CLI = fileURLToPath(new URL('../discord-simulator/cli.js', import.meta.url));

export async function startSimulatorProcess(
  args: string[],
): Promise<{ child: ChildProcess; info: SimulatorInfo }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const info = await new Promise<SimulatorInfo>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (line) =>
      resolve(JSON.parse(line) as SimulatorInfo),
    );
  });
  return { child, info };
}
