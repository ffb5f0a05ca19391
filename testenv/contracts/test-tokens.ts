// The test contracts beside this file: compiled offline with solc-js (cached by the hash of
// the sources and the compiler version, since loading and running solc-js takes seconds),
// deployed to an anvil node, and driven from tests through small helpers.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createTestClient,
  createWalletClient,
  http,
  publicActions,
  type Abi,
  type Address,
  type Hex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { AnvilNode } from '../anvil.js';

export type TestContractName =
  'TestErc20' | 'TestErc721' | 'TestErc1155' | 'RevertingToken' | 'TestMulticall3';

export interface CompiledContract {
  abi: Abi;
  bytecode: Hex;
}

// From dist/testenv/contracts the .sol files are still in the source tree.
const here = dirname(fileURLToPath(import.meta.url));
const sourceDir = [here, join(here, '..', '..', '..', 'testenv', 'contracts')].find((dir) =>
  existsSync(join(dir, 'TestErc20.sol')),
);

function readSources(): Record<string, string> {
  if (!sourceDir) throw new Error(`test contract sources (*.sol) not found beside ${here}`);
  const sources: Record<string, string> = {};
  for (const file of readdirSync(sourceDir)
    .filter((f) => f.endsWith('.sol'))
    .sort()) {
    sources[file] = readFileSync(join(sourceDir, file), 'utf8');
  }
  return sources;
}

function cacheRoot(): string {
  return process.env.SHARDWARDEN_CACHE ?? join(homedir(), '.cache', 'shardwarden');
}

let compiled: Record<string, CompiledContract> | undefined;

/** Compiles (or loads from the cache) every test contract. */
export function compileTestContracts(): Record<TestContractName, CompiledContract> {
  if (compiled) return compiled as Record<TestContractName, CompiledContract>;
  const require = createRequire(import.meta.url);
  const solcVersion = (require('solc/package.json') as { version: string }).version;
  const sources = readSources();
  const hash = createHash('sha256');
  for (const [file, text] of Object.entries(sources)) hash.update(`${file}\0${text}\0`);
  hash.update(`solc ${solcVersion}`);
  const cacheFile = join(cacheRoot(), 'contracts', `${hash.digest('hex')}.json`);
  if (existsSync(cacheFile)) {
    compiled = JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, CompiledContract>;
    return compiled as Record<TestContractName, CompiledContract>;
  }
  const solc = require('solc') as { compile(input: string): string };
  const input = {
    language: 'Solidity',
    sources: Object.fromEntries(Object.entries(sources).map(([file, content]) => [file, { content }])),
    settings: {
      // paris: no PUSH0, so the bytecode runs on any node a developer might point tests at.
      evmVersion: 'paris',
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error(`test contracts do not compile:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  }
  const result: Record<string, CompiledContract> = {};
  for (const byName of Object.values(output.contracts)) {
    for (const [name, contract] of Object.entries(byName)) {
      result[name] = { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` };
    }
  }
  mkdirSync(dirname(cacheFile), { recursive: true });
  // Write then rename: parallel test files may compile at the same time.
  const partial = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify(result));
  renameSync(partial, cacheFile);
  compiled = result;
  return result as Record<TestContractName, CompiledContract>;
}

export interface TestTokens {
  erc20: Address;
  erc721: Address;
  erc1155: Address;
  /** balanceOf always reverts. */
  reverter: Address;
  multicall3: Address;
}

function walletFor(anvil: AnvilNode, privateKey: Hex) {
  return createWalletClient({ account: privateKeyToAccount(privateKey), transport: http(anvil.url) }).extend(
    publicActions,
  );
}

/** Deploys the test contracts from the first dev account. */
export async function deployTestTokens(anvil: AnvilNode): Promise<TestTokens> {
  const contracts = compileTestContracts();
  const deployer = walletFor(anvil, anvil.accounts[0]!.privateKey);
  const deploy = async (name: TestContractName): Promise<Address> => {
    const hash = await deployer.deployContract({
      abi: contracts[name].abi,
      bytecode: contracts[name].bytecode,
      chain: null,
    });
    const receipt = await deployer.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (!receipt.contractAddress || receipt.status !== 'success') throw new Error(`deploying ${name} failed`);
    return receipt.contractAddress;
  };
  // One after another: they share the deployer's nonce.
  return {
    erc20: await deploy('TestErc20'),
    erc721: await deploy('TestErc721'),
    erc1155: await deploy('TestErc1155'),
    reverter: await deploy('RevertingToken'),
    multicall3: await deploy('TestMulticall3'),
  };
}

export interface TokenActions {
  mintErc20(to: Address, amount: bigint): Promise<void>;
  burnErc20(from: Address, amount: bigint): Promise<void>;
  transferErc20(fromKey: Hex, to: Address, amount: bigint): Promise<void>;
  mintErc721(to: Address, tokenId: bigint): Promise<void>;
  burnErc721(tokenId: bigint): Promise<void>;
  transferErc721(fromKey: Hex, to: Address, tokenId: bigint): Promise<void>;
  mintErc1155(to: Address, tokenId: bigint, amount: bigint): Promise<void>;
  burnErc1155(from: Address, tokenId: bigint, amount: bigint): Promise<void>;
  transferErc1155(fromKey: Hex, to: Address, tokenId: bigint, amount: bigint): Promise<void>;
  setNativeBalance(address: Address, wei: bigint): Promise<void>;
}

/**
 * State changes for tests. Mints and burns are sent from the first dev account (the test
 * contracts let anyone mint and burn); transfers from the holder's key. Each call waits for
 * its receipt and throws if the transaction reverted.
 */
export function tokenActions(anvil: AnvilNode, tokens: TestTokens): TokenActions {
  const { abi: erc20 } = compileTestContracts().TestErc20;
  const { abi: erc721 } = compileTestContracts().TestErc721;
  const { abi: erc1155 } = compileTestContracts().TestErc1155;
  const admin = anvil.accounts[0]!.privateKey;
  // Serialised per sender so concurrent helpers never race for a nonce.
  const queues = new Map<Hex, Promise<unknown>>();
  const send = (
    key: Hex,
    address: Address,
    abi: Abi,
    functionName: string,
    args: unknown[],
  ): Promise<void> => {
    const run = async () => {
      const wallet = walletFor(anvil, key);
      const hash = await wallet.writeContract({ address, abi, functionName, args, chain: null });
      const receipt = await wallet.waitForTransactionReceipt({ hash, pollingInterval: 50 });
      if (receipt.status !== 'success') throw new Error(`${functionName} on ${address} reverted`);
    };
    const next = (queues.get(key) ?? Promise.resolve()).then(run, run);
    queues.set(key, next);
    return next;
  };
  const testClient = createTestClient({ mode: 'anvil', transport: http(anvil.url) });
  return {
    mintErc20: (to, amount) => send(admin, tokens.erc20, erc20, 'mint', [to, amount]),
    burnErc20: (from, amount) => send(admin, tokens.erc20, erc20, 'burn', [from, amount]),
    transferErc20: (fromKey, to, amount) => send(fromKey, tokens.erc20, erc20, 'transfer', [to, amount]),
    mintErc721: (to, tokenId) => send(admin, tokens.erc721, erc721, 'mint', [to, tokenId]),
    burnErc721: (tokenId) => send(admin, tokens.erc721, erc721, 'burn', [tokenId]),
    transferErc721: (fromKey, to, tokenId) =>
      send(fromKey, tokens.erc721, erc721, 'transferFrom', [
        privateKeyToAccount(fromKey).address,
        to,
        tokenId,
      ]),
    mintErc1155: (to, tokenId, amount) => send(admin, tokens.erc1155, erc1155, 'mint', [to, tokenId, amount]),
    burnErc1155: (from, tokenId, amount) =>
      send(admin, tokens.erc1155, erc1155, 'burn', [from, tokenId, amount]),
    transferErc1155: (fromKey, to, tokenId, amount) =>
      send(fromKey, tokens.erc1155, erc1155, 'safeTransferFrom', [
        privateKeyToAccount(fromKey).address,
        to,
        tokenId,
        amount,
        '0x',
      ]),
    setNativeBalance: (address, wei) => testClient.setBalance({ address, value: wei }),
  };
}
