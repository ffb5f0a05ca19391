// The chain layer: RPC reads with failover, rule evaluation through Multicall3, addresses
// and wallet signatures. See docs/chain.md.
export {
  createChainReader,
  MULTICALL3_ADDRESS,
  type ChainReader,
  type ChainReaderOptions,
} from './reader.js';
export { RuleTargetError, RULE_KINDS, type RuleKind, type RuleSpec, type RuleEvaluation } from './rules.js';
export { InvalidAddressError, normaliseAddress } from './address.js';
export { verifyWalletSignature } from './signature.js';
export { ChainRpcError, type RpcOutcome } from './endpoints.js';
export type { Address, Hex } from 'viem';
