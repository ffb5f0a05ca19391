// Wallet linking: a member proves control of an address by signing a one-time message.
import { verifyMessage, type Address, type Hex } from 'viem';

/**
 * EIP-191 personal_sign check by signer recovery. False, never a throw, for a different
 * signer or a malformed signature. Smart-contract wallets (ERC-1271) are not covered: that
 * needs a chain call.
 */
export async function verifyWalletSignature(args: {
  address: Address;
  message: string;
  signature: Hex;
}): Promise<boolean> {
  try {
    return await verifyMessage({ address: args.address, message: args.message, signature: args.signature });
  } catch {
    return false;
  }
}
