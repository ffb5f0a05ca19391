// Address normalisation, wallet signatures (real secp256k1 keys, no node needed) and how
// endpoints are named.
import { getAddress, type Address, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { InvalidAddressError, normaliseAddress, verifyWalletSignature } from '../../bot/chain/index.js';
import { parseRpcEndpoints } from '../../bot/chain/endpoints.js';

// Anvil's first dev key (public test mnemonic), so the test matches what a developer sees locally.
const ANVIL_KEY: Hex = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

describe('normaliseAddress', () => {
  const lower = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

  test('accepts lower, upper and checksummed case, trims, returns lowercase', () => {
    expect(normaliseAddress(lower)).toBe(lower);
    expect(normaliseAddress(`  ${getAddress(lower)}\n`)).toBe(lower);
    expect(normaliseAddress(`0x${lower.slice(2).toUpperCase()}`)).toBe(lower);
  });

  test('a wrong checksum names the field and value', () => {
    const checksummed = getAddress(lower);
    // Flip the case of one letter: still mixed case, no longer the checksum.
    const i = checksummed.search(/[a-f]/);
    const typo = `${checksummed.slice(0, i)}${checksummed[i]!.toUpperCase()}${checksummed.slice(i + 1)}`;
    expect(() => normaliseAddress(typo, 'walletAddress')).toThrow(
      new InvalidAddressError(
        'walletAddress',
        typo,
        'has an invalid EIP-55 checksum (mixed case must match it)',
      ),
    );
    expect(() => normaliseAddress(typo, 'walletAddress')).toThrow(`walletAddress: "${typo}"`);
  });

  test.each(['', '0x', 'hello', `${lower}00`, lower.slice(2), `0x${'g'.repeat(40)}`])(
    'rejects %j, naming the field',
    (value) => {
      let error: unknown;
      try {
        normaliseAddress(value, 'rules[2].contractAddress');
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(InvalidAddressError);
      expect((error as InvalidAddressError).field).toBe('rules[2].contractAddress');
      expect((error as Error).message).toBe(
        `rules[2].contractAddress: "${value.trim()}" is not an address (expected 0x followed by 40 hex digits)`,
      );
    },
  );

  test('the default field name is address', () => {
    expect(() => normaliseAddress('0x1')).toThrow('address: "0x1" is not an address');
  });
});

describe('verifyWalletSignature', () => {
  const account = privateKeyToAccount(ANVIL_KEY);
  const message = 'Link this wallet to Shardwarden community 42.\nNonce: 6f1c0e2a';

  test('a signature by the wallet verifies, whatever the address case', async () => {
    const signature = await account.signMessage({ message });
    expect(await verifyWalletSignature({ address: account.address, message, signature })).toBe(true);
    expect(
      await verifyWalletSignature({ address: account.address.toLowerCase() as Address, message, signature }),
    ).toBe(true);
  });

  test('another signer, a tampered message or a malformed signature does not', async () => {
    const signature = await account.signMessage({ message });
    const other = privateKeyToAccount(generatePrivateKey());
    const byOther = await other.signMessage({ message });
    expect(await verifyWalletSignature({ address: account.address, message, signature: byOther })).toBe(
      false,
    );
    expect(await verifyWalletSignature({ address: account.address, message: `${message}x`, signature })).toBe(
      false,
    );
    expect(await verifyWalletSignature({ address: account.address, message, signature: '0x1234' })).toBe(
      false,
    );
    expect(
      await verifyWalletSignature({ address: account.address, message, signature: 'nonsense' as Hex }),
    ).toBe(false);
    const flipped =
      `${signature.slice(0, 10)}${signature[10] === '0' ? '1' : '0'}${signature.slice(11)}` as Hex;
    expect(await verifyWalletSignature({ address: account.address, message, signature: flipped })).toBe(
      false,
    );
  });
});

describe('parseRpcEndpoints', () => {
  test('labels are origins; repeated origins become rpc<index>; keys stay in the target only', () => {
    const endpoints = parseRpcEndpoints([
      'https://eth.example.com/v3/KEY1',
      'https://user:pa%3Ass@other.example:8545/?key=KEY2',
      'https://eth.example.com/v3/KEY3',
    ]);
    expect(endpoints.map((e) => e.label)).toEqual(['rpc0', 'https://other.example:8545', 'rpc2']);
    expect(endpoints.map((e) => e.publicUrl)).toEqual([
      'https://eth.example.com/#rpc0',
      'https://other.example:8545',
      'https://eth.example.com/#rpc2',
    ]);
    expect(endpoints[1]!.target).toEqual({
      url: 'https://other.example:8545/?key=KEY2',
      headers: { authorization: `Basic ${Buffer.from('user:pa:ss').toString('base64')}` },
    });
    expect(endpoints[2]!.target.url).toBe('https://eth.example.com/v3/KEY3');
  });
});
