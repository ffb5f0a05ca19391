// A throwaway local EVM node (anvil, shipped as an npm package) for chain-layer tests.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Address, Hex } from 'viem';
import { requireExecutable } from './debian-packages.js';
import { freePort } from './ports.js';
import { startProcess, waitUntil, type ManagedProcess } from './processes.js';
import { makeTempDir } from './tempdir.js';

export interface AnvilAccount {
  address: Address;
  privateKey: Hex;
}

export interface AnvilNode {
  readonly url: string;
  readonly chainId: number;
  /** Funded dev accounts (10 000 ETH each unless `balanceEth` says otherwise). */
  readonly accounts: AnvilAccount[];
  readonly logFile: string;
  stop(): Promise<void>;
}

export interface AnvilOptions {
  chainId?: number;
  /** Number of funded dev accounts (default 10). */
  accounts?: number;
  balanceEth?: number;
  /** The address to listen on (default 127.0.0.1); a real node's pods reach the host's. */
  host?: string;
}

/** The anvil binary: SHARDWARDEN_ANVIL, else the one in @foundry-rs/anvil-linux-amd64. */
export function anvilBinary(): string {
  const fromEnv = process.env.SHARDWARDEN_ANVIL;
  if (fromEnv) return requireExecutable('SHARDWARDEN_ANVIL', fromEnv);
  let path: string | undefined;
  try {
    const require = createRequire(import.meta.url);
    path = join(dirname(require.resolve('@foundry-rs/anvil-linux-amd64/package.json')), 'bin', 'anvil');
  } catch {
    /* package not installed */
  }
  if (!path || !existsSync(path)) {
    throw new Error(
      'anvil is missing: install the dev dependency @foundry-rs/anvil-linux-amd64 (npm ci), ' +
        'or set SHARDWARDEN_ANVIL to an anvil binary',
    );
  }
  return path;
}

async function rpc(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(2_000),
  });
  const body = (await response.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

export async function startAnvil(options: AnvilOptions = {}): Promise<AnvilNode> {
  const binary = anvilBinary();
  const dir = makeTempDir('anvil');
  const port = await freePort();
  const chainId = options.chainId ?? 31337;
  const configFile = join(dir.path, 'anvil.json');
  const host = options.host ?? '127.0.0.1';
  const url = `http://${host}:${port}`;
  let proc: ManagedProcess | undefined;
  try {
    proc = startProcess(
      'anvil',
      binary,
      [
        '--host',
        host,
        '--port',
        String(port),
        '--chain-id',
        String(chainId),
        '--accounts',
        String(options.accounts ?? 10),
        '--balance',
        String(options.balanceEth ?? 10_000),
        // The keys come from here rather than from re-deriving the default mnemonic.
        '--config-out',
        configFile,
      ],
      join(dir.path, 'anvil.log'),
    );
    await waitUntil('anvil eth_chainId', async () => Number(await rpc(url, 'eth_chainId')) === chainId, {
      process: proc,
      timeoutMs: 20_000,
    });
    await waitUntil('anvil --config-out', async () => existsSync(configFile), {
      process: proc,
      timeoutMs: 5_000,
    });
    const config = JSON.parse(readFileSync(configFile, 'utf8')) as {
      available_accounts: Address[];
      private_keys: Hex[];
    };
    const accounts = config.available_accounts.map((address, i) => ({
      address,
      privateKey: config.private_keys[i]!,
    }));
    const started = proc;
    return {
      url,
      chainId,
      accounts,
      logFile: started.logFile,
      async stop() {
        await started.stop();
        dir.remove();
      },
    };
  } catch (err) {
    await proc?.stop();
    dir.remove();
    throw err;
  }
}
