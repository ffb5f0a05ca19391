// Gating rules as balance reads: which call answers each (rule, wallet) pair and how its
// result becomes an evaluation. Pure; the reader does the I/O.
import { decodeAbiParameters, encodeFunctionData, parseAbi, type Address, type Hex } from 'viem';

export type RuleKind = 'NATIVE_BALANCE' | 'ERC20_BALANCE' | 'ERC721_OWNERSHIP' | 'ERC1155_BALANCE';

export const RULE_KINDS: readonly RuleKind[] = [
  'NATIVE_BALANCE',
  'ERC20_BALANCE',
  'ERC721_OWNERSHIP',
  'ERC1155_BALANCE',
];

export interface RuleSpec {
  id: string;
  kind: RuleKind;
  /** Token contract; unused for NATIVE_BALANCE. */
  contractAddress?: Address;
  /** Required for ERC1155_BALANCE. */
  tokenId?: bigint;
  /** Smallest qualifying balance (wei / token units / NFT count; ERC-721 below 1 counts as 1). */
  minAmount: bigint;
}

export interface RuleEvaluation {
  ruleId: string;
  wallet: Address;
  balance?: bigint;
  eligible: boolean;
  /** Why the balance could not be read (reverted, no data, rule misconfigured). */
  error?: string;
}

export class RuleTargetError extends Error {
  override readonly name = 'RuleTargetError';
}

export const balanceAbi = parseAbi([
  'function balanceOf(address owner) view returns (uint256)',
  'function balanceOf(address account, uint256 id) view returns (uint256)',
]);

export const multicall3Abi = parseAbi([
  'struct Call3 { address target; bool allowFailure; bytes callData; }',
  'struct Result { bool success; bytes returnData; }',
  'function aggregate3(Call3[] calls) payable returns (Result[] returnData)',
  'function getEthBalance(address addr) view returns (uint256 balance)',
]);

export interface BalanceCall {
  target: Address;
  callData: Hex;
  /** For messages: the function called. */
  signature: string;
}

/** Why a rule cannot be read at all, or undefined when it is well-formed. */
export function ruleProblem(rule: RuleSpec): string | undefined {
  if (!RULE_KINDS.includes(rule.kind))
    return `kind "${String(rule.kind)}" is not one of ${RULE_KINDS.join(', ')}`;
  if (rule.kind === 'NATIVE_BALANCE') return undefined;
  if (!rule.contractAddress) return `contractAddress is required for ${rule.kind} rules`;
  if (rule.kind === 'ERC1155_BALANCE' && rule.tokenId === undefined) {
    return 'tokenId is required for ERC1155_BALANCE rules';
  }
  return undefined;
}

/** The read that answers "what does `wallet` hold for `rule`" (rule must be well-formed). */
export function balanceCall(rule: RuleSpec, wallet: Address, multicallAddress: Address): BalanceCall {
  switch (rule.kind) {
    case 'NATIVE_BALANCE':
      return {
        target: multicallAddress,
        callData: encodeFunctionData({ abi: multicall3Abi, functionName: 'getEthBalance', args: [wallet] }),
        signature: 'getEthBalance(address)',
      };
    case 'ERC1155_BALANCE':
      return {
        target: rule.contractAddress!,
        callData: encodeFunctionData({
          abi: balanceAbi,
          functionName: 'balanceOf',
          args: [wallet, rule.tokenId!],
        }),
        signature: 'balanceOf(address,uint256)',
      };
    default:
      return {
        target: rule.contractAddress!,
        callData: encodeFunctionData({ abi: balanceAbi, functionName: 'balanceOf', args: [wallet] }),
        signature: 'balanceOf(address)',
      };
  }
}

export function threshold(rule: RuleSpec): bigint {
  return rule.kind === 'ERC721_OWNERSHIP' && rule.minAmount < 1n ? 1n : rule.minAmount;
}

const ERROR_STRING_SELECTOR = '0x08c379a0';

/** The Error(string) reason of revert data, if it has one. */
export function revertReason(data: Hex | undefined): string | undefined {
  if (!data || !data.startsWith(ERROR_STRING_SELECTOR)) return undefined;
  try {
    const [reason] = decodeAbiParameters([{ type: 'string' }], `0x${data.slice(10)}`);
    return reason;
  } catch {
    return undefined;
  }
}

/** A uint256 balance from return data, or why there is none. */
export function decodeBalance(returnData: Hex): { balance: bigint } | { problem: string } {
  if (returnData === '0x') return { problem: 'returned no data (no contract, or no such function)' };
  // Exactly one word is expected; anything shorter is not a uint256.
  if (returnData.length < 66) return { problem: 'did not return a uint256' };
  return { balance: BigInt(returnData.slice(0, 66)) };
}

/** Turns one multicall result into the evaluation of its (rule, wallet) pair. */
export function evaluationFromResult(
  rule: RuleSpec,
  wallet: Address,
  call: BalanceCall,
  result: { success: boolean; returnData: Hex },
): RuleEvaluation {
  if (!result.success) {
    const reason = revertReason(result.returnData);
    return {
      ruleId: rule.id,
      wallet,
      eligible: false,
      error: `${call.signature} on ${call.target} reverted${reason ? `: ${reason}` : ''}`,
    };
  }
  const decoded = decodeBalance(result.returnData);
  if ('problem' in decoded) {
    return {
      ruleId: rule.id,
      wallet,
      eligible: false,
      error: `${call.signature} on ${call.target} ${decoded.problem}`,
    };
  }
  return { ruleId: rule.id, wallet, balance: decoded.balance, eligible: decoded.balance >= threshold(rule) };
}
