// Chain reads for the worker: one viem client over all RPC endpoints (failing over on 429,
// 5xx, timeouts and connection errors), balance checks batched through Multicall3.
import { Registry } from 'prom-client';
import {
  createPublicClient,
  decodeFunctionResult,
  encodeFunctionData,
  type Address,
  type Hex,
  type PublicClient,
} from 'viem';
import type { Logger } from '../observability/logger.js';
import { InvalidAddressError, normaliseAddress } from './address.js';
import { ChainRpcError, classifyRpcError, parseRpcEndpoints } from './endpoints.js';
import { ChainMetrics } from './metrics.js';
import {
  balanceCall,
  decodeBalance,
  evaluationFromResult,
  multicall3Abi,
  revertReason,
  ruleProblem,
  RuleTargetError,
  type BalanceCall,
  type RuleEvaluation,
  type RuleKind,
  type RuleSpec,
} from './rules.js';
import { createFailoverTransport } from './transport.js';

/** Where Multicall3 lives on nearly every public chain. */
export const MULTICALL3_ADDRESS: Address = '0xca11bde05977b3631167028862be2a173976ca11';

export interface ChainReaderOptions {
  rpcUrls: string[];
  /** When set, every evaluation first checks that the endpoints serve this chain. */
  chainId?: number;
  /** Per request and endpoint (default 5000). */
  timeoutMs?: number;
  /** Default MULTICALL3_ADDRESS. */
  multicallAddress?: Address;
  /** (rule, wallet) reads per aggregate3 call (default 300). */
  multicallBatchSize?: number;
  registry?: Registry;
  logger?: Logger;
  /** How long an endpoint that failed is skipped while another remains (default 30000; 0 disables). */
  cooldownMs?: number;
  /** Retries of the whole endpoint list after every endpoint failed (default 1). */
  retryCount?: number;
}

export interface ChainReader {
  /** viem client whose transport fails over across all endpoints. */
  client: PublicClient;
  chainId(): Promise<number>;
  /** One evaluation per (rule, wallet), rules outer and wallets inner, in the order given. */
  evaluateRules(rules: RuleSpec[], wallets: Address[]): Promise<RuleEvaluation[]>;
  /** Throws RuleTargetError (a message for the admin) when the rule cannot be evaluated. */
  checkRuleTarget(rule: RuleSpec): Promise<void>;
}

// balanceOf(0) reverts on standard ERC-721s, so the target check asks about another address.
const PROBE_WALLET: Address = '0x000000000000000000000000000000000000dead';
const PARALLEL_BATCHES = 4;
const KIND_NAMES: Record<RuleKind, string> = {
  NATIVE_BALANCE: 'native',
  ERC20_BALANCE: 'ERC-20',
  ERC721_OWNERSHIP: 'ERC-721',
  ERC1155_BALANCE: 'ERC-1155',
};

function positiveInteger(
  value: number | undefined,
  field: string,
  fallback: number,
  allowZero = false,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new Error(`${field} must be a ${allowZero ? 'non-negative' : 'positive'} integer (got ${value})`);
  }
  return value;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return results;
}

/** Revert data carried by a viem error chain, if any. */
function revertData(err: unknown): Hex | undefined {
  for (
    let e = err as { data?: unknown; cause?: unknown } | undefined, d = 0;
    e && d < 10;
    e = e.cause as never, d++
  ) {
    if (typeof e.data === 'string' && e.data.startsWith('0x')) return e.data as Hex;
  }
  return undefined;
}

export function createChainReader(o: ChainReaderOptions): ChainReader {
  const endpoints = parseRpcEndpoints(o.rpcUrls);
  const timeoutMs = positiveInteger(o.timeoutMs, 'timeoutMs', 5_000);
  const batchSize = positiveInteger(o.multicallBatchSize, 'multicallBatchSize', 300);
  const cooldownMs = positiveInteger(o.cooldownMs, 'cooldownMs', 30_000, true);
  const retryCount = positiveInteger(o.retryCount, 'retryCount', 1, true);
  if (o.chainId !== undefined) positiveInteger(o.chainId, 'chainId', 0);
  const multicallAddress = normaliseAddress(o.multicallAddress ?? MULTICALL3_ADDRESS, 'multicallAddress');
  const metrics = new ChainMetrics(o.registry ?? new Registry());
  const client = createPublicClient({
    transport: createFailoverTransport(endpoints, {
      timeoutMs,
      cooldownMs,
      retryCount,
      metrics,
      logger: o.logger,
    }),
  });
  const labels = endpoints.map((e) => e.label).join(', ');

  /** A raw JSON-RPC call. Reverts come back as viem's error; everything else as ChainRpcError. */
  async function rpc<T>(method: string, params: unknown[]): Promise<T> {
    try {
      return (await client.request({ method, params } as never)) as T;
    } catch (err) {
      const failure = classifyRpcError(err);
      if (!failure.failover) throw err;
      throw new ChainRpcError(
        `${method} failed: no RPC endpoint answered (endpoints: ${labels}; last error: ${failure.summary})`,
        failure.outcome,
        { cause: err },
      );
    }
  }

  let chainIdPromise: Promise<number> | undefined;
  function chainId(): Promise<number> {
    chainIdPromise ??= (async () => {
      const id = Number(await rpc<Hex>('eth_chainId', []));
      if (o.chainId !== undefined && id !== o.chainId) {
        throw new Error(`the RPC endpoints serve chain ${id}, but chainId is configured as ${o.chainId}`);
      }
      return id;
    })();
    // A failure is not remembered: the next call asks again.
    chainIdPromise.catch(() => (chainIdPromise = undefined));
    return chainIdPromise;
  }

  async function aggregate(calls: BalanceCall[]): Promise<{ success: boolean; returnData: Hex }[]> {
    const data = encodeFunctionData({
      abi: multicall3Abi,
      functionName: 'aggregate3',
      args: [calls.map((c) => ({ target: c.target, allowFailure: true, callData: c.callData }))],
    });
    let returned: Hex;
    try {
      returned = await rpc<Hex>('eth_call', [{ to: multicallAddress, data }, 'latest']);
    } catch (err) {
      if (err instanceof ChainRpcError) throw err;
      throw new Error(
        `aggregate3 on the multicall contract ${multicallAddress} reverted for ${calls.length} calls ` +
          '(out of gas? lower multicallBatchSize)',
        { cause: err },
      );
    }
    if (returned === '0x') {
      throw new Error(
        `the multicall contract ${multicallAddress} returned nothing on chain ${await chainId()}: ` +
          'is Multicall3 deployed there? Set multicallAddress',
      );
    }
    const results = decodeFunctionResult({ abi: multicall3Abi, functionName: 'aggregate3', data: returned });
    if (results.length !== calls.length) {
      throw new Error(`aggregate3 returned ${results.length} results for ${calls.length} calls`);
    }
    return [...results];
  }

  async function evaluateRules(rules: RuleSpec[], wallets: Address[]): Promise<RuleEvaluation[]> {
    const normalisedWallets = wallets.map((w, i) => normaliseAddress(w, `wallets[${i}]`));
    const normalisedRules = rules.map((rule, i) =>
      rule.contractAddress === undefined
        ? rule
        : { ...rule, contractAddress: normaliseAddress(rule.contractAddress, `rules[${i}].contractAddress`) },
    );
    if (o.chainId !== undefined) await chainId();
    const evaluations: RuleEvaluation[] = [];
    const pending: { index: number; rule: RuleSpec; wallet: Address; call: BalanceCall }[] = [];
    for (const rule of normalisedRules) {
      const problem = ruleProblem(rule);
      for (const wallet of normalisedWallets) {
        if (problem) {
          evaluations.push({ ruleId: rule.id, wallet, eligible: false, error: problem });
        } else {
          pending.push({
            index: evaluations.length,
            rule,
            wallet,
            call: balanceCall(rule, wallet, multicallAddress),
          });
          evaluations.push({ ruleId: rule.id, wallet, eligible: false });
        }
      }
    }
    const batches: (typeof pending)[] = [];
    for (let i = 0; i < pending.length; i += batchSize) batches.push(pending.slice(i, i + batchSize));
    await mapLimit(batches, PARALLEL_BATCHES, async (batch) => {
      const results = await aggregate(batch.map((p) => p.call));
      batch.forEach((p, i) => {
        evaluations[p.index] = evaluationFromResult(p.rule, p.wallet, p.call, results[i]!);
      });
    });
    return evaluations;
  }

  async function checkRuleTarget(rule: RuleSpec): Promise<void> {
    const problem = ruleProblem(rule);
    if (problem) throw new RuleTargetError(problem);
    if (rule.kind === 'NATIVE_BALANCE') return;
    let address: Address;
    try {
      address = normaliseAddress(rule.contractAddress!, 'contractAddress');
    } catch (err) {
      if (err instanceof InvalidAddressError) throw new RuleTargetError(err.message);
      throw err;
    }
    const id = await chainId();
    const code = await rpc<Hex | null>('eth_getCode', [address, 'latest']);
    if (!code || code === '0x') throw new RuleTargetError(`${address} has no contract code on chain ${id}`);
    const call = balanceCall({ ...rule, contractAddress: address }, PROBE_WALLET, multicallAddress);
    const kind = KIND_NAMES[rule.kind];
    let returned: Hex;
    try {
      returned = await rpc<Hex>('eth_call', [{ to: address, data: call.callData }, 'latest']);
    } catch (err) {
      if (err instanceof ChainRpcError) throw err;
      const reason = revertReason(revertData(err));
      throw new RuleTargetError(
        `${call.signature} reverted on ${address} (chain ${id})${reason ? `: ${reason}` : ''}; ` +
          `is it an ${kind} contract?`,
      );
    }
    const decoded = decodeBalance(returned);
    if ('problem' in decoded) {
      throw new RuleTargetError(
        `${call.signature} on ${address} (chain ${id}) ${decoded.problem}; is it an ${kind} contract?`,
      );
    }
  }

  return { client: client as PublicClient, chainId, evaluateRules, checkRuleTarget };
}
