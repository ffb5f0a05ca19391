// RPC failover through proxies in front of a real anvil node: the first endpoint rate-limits,
// fails or hangs, and calls still succeed through the second. Endpoint URLs carry fake API
// keys that must never show up in errors, logs or metrics.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Address } from 'viem';
import {
  ChainRpcError,
  createChainReader,
  type ChainReader,
  type ChainReaderOptions,
  type RuleSpec,
} from '../../bot/chain/index.js';
import {
  deployTestTokens,
  startAnvil,
  startRpcProxy,
  type AnvilNode,
  type RpcProxy,
  type TestTokens,
} from '../../testenv/index.js';

const SECRET = 'sk_live_0123456789';
let anvil: AnvilNode;
let tokens: TestTokens;
let first: RpcProxy;
let second: RpcProxy;
let logs: string;
let registry: Registry;
let wallet: Address;
let rule: RuleSpec;

// Long enough for a healthy endpoint (anvil behind a proxy) to answer on a loaded machine (a CI
// run at load 15 saw it miss 400 ms); a hanging one costs this much per call.
const RPC_TIMEOUT_MS = 3_000;

const withKey = (proxy: RpcProxy, n: number) => `${proxy.url}/v3/${SECRET}?apikey=${SECRET}&n=${n}`;

function readerFor(options: Partial<ChainReaderOptions> = {}): ChainReader {
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs += String(chunk);
      done();
    },
  });
  return createChainReader({
    rpcUrls: [withKey(first, 1), withKey(second, 2)],
    multicallAddress: tokens.multicall3,
    timeoutMs: RPC_TIMEOUT_MS,
    cooldownMs: 0,
    registry,
    logger: pino({ level: 'warn' }, sink),
    ...options,
  });
}

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const match = metric?.values.find((v) =>
    Object.entries(labels).every(([k, value]) => v.labels[k] === value),
  );
  return match?.value ?? 0;
}

beforeAll(async () => {
  anvil = await startAnvil();
  tokens = await deployTestTokens(anvil);
  first = await startRpcProxy(anvil.url);
  second = await startRpcProxy(anvil.url);
  wallet = anvil.accounts[0]!.address;
  rule = { id: 'native', kind: 'NATIVE_BALANCE', minAmount: 1n };
});

afterAll(async () => {
  await first?.stop();
  await second?.stop();
  await anvil?.stop();
});

beforeEach(() => {
  logs = '';
  registry = new Registry();
  first.behaviour = 'pass';
  second.behaviour = 'pass';
  first.resetCounters();
  second.resetCounters();
});

afterEach(async () => {
  // Whatever happened, no key in logs or metrics.
  expect(logs).not.toContain(SECRET);
  expect(await registry.metrics()).not.toContain(SECRET);
});

test('all calls go to the first endpoint while it answers', async () => {
  const reader = readerFor();
  await expect(reader.evaluateRules([rule], [wallet])).resolves.toMatchObject([{ eligible: true }]);
  expect(first.requests).toBe(1);
  expect(second.requests).toBe(0);
  expect(await counter('shardwarden_chain_rpc_calls_total', { endpoint: first.url, outcome: 'ok' })).toBe(1);
});

test.each([
  ['429', 'rate_limited'],
  ['500', 'server_error'],
  ['hang', 'timeout'],
] as const)('first endpoint answering %s: calls succeed through the second', async (behaviour, outcome) => {
  const reader = readerFor();
  first.behaviour = behaviour;
  const started = Date.now();
  await expect(reader.evaluateRules([rule], [wallet])).resolves.toMatchObject([{ eligible: true }]);
  expect(await reader.client.getBalance({ address: wallet })).toBeGreaterThan(0n);
  expect(first.requests).toBe(2);
  expect(second.requests).toBe(2);
  expect(await counter('shardwarden_chain_rpc_calls_total', { endpoint: first.url, outcome })).toBe(2);
  expect(await counter('shardwarden_chain_rpc_failovers_total', { endpoint: first.url })).toBe(2);
  expect(await counter('shardwarden_chain_rpc_calls_total', { endpoint: second.url, outcome: 'ok' })).toBe(2);
  expect(await counter('shardwarden_chain_rpc_failovers_total', { endpoint: second.url })).toBe(0);
  if (behaviour === 'hang') expect(Date.now() - started).toBeGreaterThanOrEqual(2 * RPC_TIMEOUT_MS);
  expect(logs).toContain('failing over');
  expect(logs).toContain(first.url);
});

test('a failed endpoint is skipped during its cooldown', async () => {
  const reader = readerFor({ cooldownMs: 60_000 });
  first.behaviour = '429';
  for (let i = 0; i < 3; i++) await reader.client.getBalance({ address: wallet });
  expect(first.requests).toBe(1);
  expect(second.requests).toBe(3);
  expect(await counter('shardwarden_chain_rpc_failovers_total', { endpoint: first.url })).toBe(1);
});

test('a revert is an answer: no failover', async () => {
  const reader = readerFor();
  await expect(
    reader.checkRuleTarget({
      id: 'r',
      kind: 'ERC20_BALANCE',
      contractAddress: tokens.reverter,
      minAmount: 1n,
    }),
  ).rejects.toThrow(/reverted/);
  expect(second.requests).toBe(0);
  expect(await counter('shardwarden_chain_rpc_failovers_total', { endpoint: first.url })).toBe(0);
});

test('all endpoints failing: a clear error that names endpoints by origin only', async () => {
  const reader = readerFor({ retryCount: 0 });
  first.behaviour = '429';
  second.behaviour = '500';
  const error = await reader.evaluateRules([rule], [wallet]).catch((err: unknown) => err);
  expect(error).toBeInstanceOf(ChainRpcError);
  const rpcError = error as ChainRpcError;
  expect(rpcError.message).toBe(
    `eth_call failed: no RPC endpoint answered (endpoints: ${first.url}, ${second.url}; last error: HTTP 500)`,
  );
  expect(rpcError.outcome).toBe('server_error');
  // The viem error kept as the cause is safe too (it only ever saw the origins).
  expect(String((rpcError.cause as Error).message)).not.toContain(SECRET);
  expect(String((rpcError.cause as Error).stack)).not.toContain(SECRET);
  expect(await counter('shardwarden_chain_rpc_failovers_total', { endpoint: first.url })).toBe(1);
  expect(await counter('shardwarden_chain_rpc_failovers_total', { endpoint: second.url })).toBe(0);
});

test('all endpoints hanging: fails after the timeouts (and one retry), without the URL', async () => {
  const reader = readerFor();
  first.behaviour = 'hang';
  second.behaviour = 'hang';
  const error = await reader.chainId().catch((err: unknown) => err);
  expect(error).toBeInstanceOf(ChainRpcError);
  expect((error as Error).message).toMatch(
    /^eth_chainId failed: no RPC endpoint answered .*last error: timed out\)$/,
  );
  expect(first.requests).toBe(2);
  expect(second.requests).toBe(2);
  first.behaviour = 'pass';
  // A failed chainId is not cached.
  await expect(reader.chainId()).resolves.toBe(31337);
});

test('credentials in the URL become an Authorization header, and stay out of labels', async () => {
  const url = new URL(first.url);
  url.username = 'user';
  url.password = SECRET;
  url.pathname = `/v3/${SECRET}`;
  const reader = readerFor({ rpcUrls: [url.toString()] });
  expect(await reader.chainId()).toBe(31337);
  expect(first.lastHeaders.authorization).toBe(`Basic ${Buffer.from(`user:${SECRET}`).toString('base64')}`);
  expect(await counter('shardwarden_chain_rpc_calls_total', { endpoint: first.url, outcome: 'ok' })).toBe(1);
});

test('invalid endpoint settings name the index, never the URL', () => {
  expect(() => createChainReader({ rpcUrls: [] })).toThrow('rpcUrls is empty');
  expect(() => createChainReader({ rpcUrls: [withKey(first, 1), `not a url ${SECRET}`] })).toThrow(
    /^rpcUrls\[1\] is not a valid URL$/,
  );
  expect(() => createChainReader({ rpcUrls: [`wss://rpc.example/${SECRET}`] })).toThrow(
    'rpcUrls[0] must be an http:// or https:// URL (got wss://)',
  );
  expect(() => createChainReader({ rpcUrls: [first.url], timeoutMs: 0 })).toThrow(
    'timeoutMs must be a positive',
  );
});
