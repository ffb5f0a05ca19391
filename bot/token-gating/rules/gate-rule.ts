// Gate rules as admins type them into `/gate add`, checked before anything touches the chain or
// the database. Amounts are whole numbers of the token's base unit (wei for native balances).
import { InvalidAddressError, normaliseAddress, type RuleKind, type RuleSpec } from '../../chain/index.js';
import { UserFacingError } from '../../worker/handlers/bot-module.js';

export const RULE_KINDS: { kind: RuleKind; choice: string; label: string }[] = [
  { kind: 'ERC20_BALANCE', choice: 'erc20', label: 'ERC-20 balance' },
  { kind: 'NATIVE_BALANCE', choice: 'native', label: 'native balance' },
  { kind: 'ERC721_OWNERSHIP', choice: 'erc721', label: 'ERC-721 ownership' },
  { kind: 'ERC1155_BALANCE', choice: 'erc1155', label: 'ERC-1155 balance' },
];

const UINT256_MAX = (1n << 256n) - 1n;

export interface GateRuleInput {
  kind: string;
  roleId: string;
  minAmount?: string;
  contract?: string;
  tokenId?: string;
}

export interface GateRuleDraft {
  kind: RuleKind;
  roleId: string;
  contractAddress?: `0x${string}`;
  tokenId?: bigint;
  minAmount: bigint;
}

function wholeNumber(value: string, field: string): bigint {
  const v = value.trim().replace(/_/g, '');
  if (!/^\d{1,78}$/.test(v))
    throw new UserFacingError(`\`${field}\` must be a whole number of base units (got \`${value}\`).`);
  const n = BigInt(v);
  if (n > UINT256_MAX) throw new UserFacingError(`\`${field}\` is larger than a uint256 (got \`${value}\`).`);
  return n;
}

export function parseGateRule(input: GateRuleInput): GateRuleDraft {
  const kind = RULE_KINDS.find((k) => k.choice === input.kind || k.kind === input.kind)?.kind;
  if (!kind)
    throw new UserFacingError(
      `\`type\` must be one of ${RULE_KINDS.map((k) => `\`${k.choice}\``).join(', ')} (got \`${input.kind}\`).`,
    );
  if (!/^\d{1,20}$/.test(input.roleId)) throw new UserFacingError('`role` must be a role of this server.');
  let contractAddress: `0x${string}` | undefined;
  if (kind === 'NATIVE_BALANCE') {
    if (input.contract) throw new UserFacingError('A `native` rule takes no `contract`.');
  } else {
    if (!input.contract) throw new UserFacingError(`A \`${input.kind}\` rule needs a \`contract\` address.`);
    try {
      contractAddress = normaliseAddress(input.contract, 'contract');
    } catch (err) {
      if (err instanceof InvalidAddressError) throw new UserFacingError(err.message);
      throw err;
    }
  }
  let tokenId: bigint | undefined;
  if (kind === 'ERC1155_BALANCE') {
    if (input.tokenId === undefined) throw new UserFacingError('An `erc1155` rule needs a `token-id`.');
    tokenId = wholeNumber(input.tokenId, 'token-id');
  } else if (input.tokenId !== undefined) {
    throw new UserFacingError('Only `erc1155` rules take a `token-id`.');
  }
  const minAmount =
    input.minAmount === undefined
      ? kind === 'ERC721_OWNERSHIP'
        ? 1n
        : undefined
      : wholeNumber(input.minAmount, 'min');
  if (minAmount === undefined) throw new UserFacingError(`A \`${input.kind}\` rule needs \`min\`.`);
  if (minAmount === 0n)
    throw new UserFacingError('`min` must be at least 1 (0 would grant the role to everyone).');
  return {
    kind,
    roleId: input.roleId,
    ...(contractAddress ? { contractAddress } : {}),
    ...(tokenId !== undefined ? { tokenId } : {}),
    minAmount,
  };
}

/** As the chain layer evaluates it. */
export function toRuleSpec(rule: {
  id: string;
  kind: RuleKind;
  contractAddress: string | null;
  tokenId: string | null;
  minAmount: string;
}): RuleSpec {
  return {
    id: rule.id,
    kind: rule.kind,
    ...(rule.contractAddress ? { contractAddress: rule.contractAddress as `0x${string}` } : {}),
    ...(rule.tokenId !== null ? { tokenId: BigInt(rule.tokenId) } : {}),
    minAmount: BigInt(rule.minAmount),
  };
}

export function describeRule(rule: {
  kind: RuleKind;
  contractAddress?: string | null;
  tokenId?: bigint | string | null;
  minAmount: bigint | string;
  roleId: string;
}): string {
  const label = RULE_KINDS.find((k) => k.kind === rule.kind)!.label;
  const what =
    rule.kind === 'NATIVE_BALANCE'
      ? `${String(rule.minAmount)} wei`
      : rule.kind === 'ERC1155_BALANCE'
        ? `${String(rule.minAmount)} of token ${String(rule.tokenId)} at ${rule.contractAddress}`
        : `${String(rule.minAmount)} at ${rule.contractAddress}`;
  return `${label} ≥ ${what} → <@&${rule.roleId}>`;
}
