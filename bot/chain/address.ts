// Wallet and contract addresses as the bot stores them: validated, lowercase.
import { isAddress, type Address } from 'viem';

export class InvalidAddressError extends Error {
  override readonly name = 'InvalidAddressError';
  constructor(
    readonly field: string,
    readonly value: string,
    reason: string,
  ) {
    super(`${field}: "${value}" ${reason}`);
  }
}

/**
 * Trims and validates an address. Mixed case must be a valid EIP-55 checksum (a typo in a
 * checksummed address is caught, not stored); all-lower or all-upper case is accepted.
 */
export function normaliseAddress(input: string, field = 'address'): Address {
  const value = typeof input === 'string' ? input.trim() : String(input);
  const shown = value.length > 100 ? `${value.slice(0, 100)}…` : value;
  if (!/^0x[0-9a-fA-F]{40}$/.test(value)) {
    throw new InvalidAddressError(field, shown, 'is not an address (expected 0x followed by 40 hex digits)');
  }
  const hex = value.slice(2);
  const mixedCase = hex !== hex.toLowerCase() && hex !== hex.toUpperCase();
  if (mixedCase && !isAddress(value, { strict: true })) {
    // No "did you mean": the checksum of a mistyped address would only bless the typo.
    throw new InvalidAddressError(field, shown, 'has an invalid EIP-55 checksum (mixed case must match it)');
  }
  return value.toLowerCase() as Address;
}
