// Rule evaluation and rule-target checks against a real anvil node and real test contracts.
import { Registry } from 'prom-client';
import type { Address } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import {
  createChainReader,
  RuleTargetError,
  type ChainReader,
  type RuleSpec,
} from '../../bot/chain/index.js';
import {
  deployTestTokens,
  startAnvil,
  startRpcProxy,
  tokenActions,
  type AnvilNode,
  type RpcProxy,
  type TestTokens,
  type TokenActions,
} from '../../testenv/index.js';

let anvil: AnvilNode;
let proxy: RpcProxy;
let tokens: TestTokens;
let actions: TokenActions;
let reader: ChainReader;

function freshWallet() {
  const key = generatePrivateKey();
  return { key, address: privateKeyToAccount(key).address.toLowerCase() as Address };
}

async function fund(address: Address) {
  await actions.setNativeBalance(address, 10n ** 18n);
}

async function evaluateOne(rule: RuleSpec, wallet: Address) {
  const [evaluation] = await reader.evaluateRules([rule], [wallet]);
  return evaluation!;
}

beforeAll(async () => {
  anvil = await startAnvil();
  tokens = await deployTestTokens(anvil);
  actions = tokenActions(anvil, tokens);
  proxy = await startRpcProxy(anvil.url);
  reader = createChainReader({
    rpcUrls: [proxy.url],
    chainId: anvil.chainId,
    multicallAddress: tokens.multicall3,
    registry: new Registry(),
  });
});

afterAll(async () => {
  await proxy?.stop();
  await anvil?.stop();
});

test('chainId is the node chain id', async () => {
  expect(await reader.chainId()).toBe(31337);
});

test('a configured chainId that the endpoints do not serve is an error', async () => {
  const wrong = createChainReader({ rpcUrls: [anvil.url], chainId: 1, multicallAddress: tokens.multicall3 });
  await expect(wrong.evaluateRules([], [])).rejects.toThrow(
    /serve chain 31337, but chainId is configured as 1/,
  );
});

test('native balance: eligible from the threshold on', async () => {
  const wallet = freshWallet().address;
  const rule: RuleSpec = { id: 'native', kind: 'NATIVE_BALANCE', minAmount: 10n ** 18n };
  await actions.setNativeBalance(wallet, 10n ** 18n - 1n);
  expect(await evaluateOne(rule, wallet)).toEqual({
    ruleId: 'native',
    wallet,
    balance: 10n ** 18n - 1n,
    eligible: false,
  });
  await actions.setNativeBalance(wallet, 10n ** 18n);
  expect(await evaluateOne(rule, wallet)).toMatchObject({ balance: 10n ** 18n, eligible: true });
});

test('ERC-20: mint up to the threshold, transfer one away', async () => {
  const holder = freshWallet();
  const other = freshWallet().address;
  await fund(holder.address);
  const rule: RuleSpec = {
    id: 'erc20',
    kind: 'ERC20_BALANCE',
    contractAddress: tokens.erc20,
    minAmount: 100n,
  };
  await actions.mintErc20(holder.address, 99n);
  expect(await evaluateOne(rule, holder.address)).toMatchObject({ balance: 99n, eligible: false });
  await actions.mintErc20(holder.address, 1n);
  expect(await evaluateOne(rule, holder.address)).toMatchObject({ balance: 100n, eligible: true });
  await actions.transferErc20(holder.key, other, 1n);
  expect(await evaluateOne(rule, holder.address)).toMatchObject({ balance: 99n, eligible: false });
  expect(await evaluateOne(rule, other)).toMatchObject({ balance: 1n, eligible: false });
});

test('ERC-721: owning one token qualifies (minAmount 0 counts as 1); transferring it away does not', async () => {
  const holder = freshWallet();
  const other = freshWallet().address;
  await fund(holder.address);
  const rule: RuleSpec = {
    id: 'nft',
    kind: 'ERC721_OWNERSHIP',
    contractAddress: tokens.erc721,
    minAmount: 0n,
  };
  expect(await evaluateOne(rule, holder.address)).toMatchObject({ balance: 0n, eligible: false });
  await actions.mintErc721(holder.address, 7n);
  expect(await evaluateOne(rule, holder.address)).toMatchObject({ balance: 1n, eligible: true });
  await actions.transferErc721(holder.key, other, 7n);
  expect(await reader.evaluateRules([rule], [holder.address, other])).toEqual([
    { ruleId: 'nft', wallet: holder.address, balance: 0n, eligible: false },
    { ruleId: 'nft', wallet: other, balance: 1n, eligible: true },
  ]);
  const two: RuleSpec = { ...rule, id: 'two', minAmount: 2n };
  await actions.mintErc721(other, 8n);
  expect(await evaluateOne(two, other)).toMatchObject({ balance: 2n, eligible: true });
  await actions.burnErc721(8n);
  expect(await evaluateOne(two, other)).toMatchObject({ balance: 1n, eligible: false });
});

test('ERC-1155: counts only the rule tokenId', async () => {
  const holder = freshWallet();
  const other = freshWallet().address;
  await fund(holder.address);
  const rule: RuleSpec = {
    id: 'sft',
    kind: 'ERC1155_BALANCE',
    contractAddress: tokens.erc1155,
    tokenId: 5n,
    minAmount: 3n,
  };
  await actions.mintErc1155(holder.address, 5n, 2n);
  await actions.mintErc1155(holder.address, 6n, 10n);
  expect(await evaluateOne(rule, holder.address)).toMatchObject({ balance: 2n, eligible: false });
  await actions.mintErc1155(holder.address, 5n, 1n);
  expect(await evaluateOne(rule, holder.address)).toMatchObject({ balance: 3n, eligible: true });
  await actions.transferErc1155(holder.key, other, 5n, 1n);
  expect(await evaluateOne(rule, holder.address)).toMatchObject({ balance: 2n, eligible: false });
});

test('a reverting or code-less target fails its own pairs only', async () => {
  const wallet = freshWallet().address;
  await actions.mintErc20(wallet, 5n);
  const eoa = anvil.accounts[9]!.address;
  const rules: RuleSpec[] = [
    { id: 'bad20', kind: 'ERC20_BALANCE', contractAddress: tokens.reverter, minAmount: 1n },
    { id: 'bad1155', kind: 'ERC1155_BALANCE', contractAddress: tokens.reverter, tokenId: 1n, minAmount: 1n },
    { id: 'eoa', kind: 'ERC20_BALANCE', contractAddress: eoa, minAmount: 1n },
    { id: 'no-token-id', kind: 'ERC1155_BALANCE', contractAddress: tokens.erc1155, minAmount: 1n },
    { id: 'good', kind: 'ERC20_BALANCE', contractAddress: tokens.erc20, minAmount: 5n },
  ];
  const [bad20, bad1155, onEoa, noTokenId, good] = await reader.evaluateRules(rules, [wallet]);
  expect(bad20).toEqual({
    ruleId: 'bad20',
    wallet,
    eligible: false,
    error: `balanceOf(address) on ${tokens.reverter.toLowerCase()} reverted: balanceOf disabled`,
  });
  expect(bad1155!.error).toMatch(
    /^balanceOf\(address,uint256\) on 0x[0-9a-f]{40} reverted: balanceOf disabled$/,
  );
  expect(onEoa).toMatchObject({ eligible: false, error: expect.stringMatching(/returned no data/) });
  expect(noTokenId).toMatchObject({
    eligible: false,
    error: 'tokenId is required for ERC1155_BALANCE rules',
  });
  expect(good).toEqual({ ruleId: 'good', wallet, balance: 5n, eligible: true });
});

test('bad wallet or contract addresses are rejected before any read, naming the field', async () => {
  await expect(reader.evaluateRules([], ['0x123' as Address])).rejects.toThrow(
    'wallets[0]: "0x123" is not an address',
  );
  const rule: RuleSpec = {
    id: 'r',
    kind: 'ERC20_BALANCE',
    contractAddress: 'nope' as Address,
    minAmount: 1n,
  };
  await expect(reader.evaluateRules([rule], [])).rejects.toThrow('rules[0].contractAddress: "nope"');
});

describe('checkRuleTarget', () => {
  test('accepts the real test tokens and native rules', async () => {
    await expect(
      reader.checkRuleTarget({
        id: 'a',
        kind: 'ERC20_BALANCE',
        contractAddress: tokens.erc20,
        minAmount: 1n,
      }),
    ).resolves.toBeUndefined();
    await expect(
      reader.checkRuleTarget({
        id: 'b',
        kind: 'ERC721_OWNERSHIP',
        contractAddress: tokens.erc721,
        minAmount: 1n,
      }),
    ).resolves.toBeUndefined();
    await expect(
      reader.checkRuleTarget({
        id: 'c',
        kind: 'ERC1155_BALANCE',
        contractAddress: tokens.erc1155,
        tokenId: 1n,
        minAmount: 1n,
      }),
    ).resolves.toBeUndefined();
    await expect(
      reader.checkRuleTarget({ id: 'd', kind: 'NATIVE_BALANCE', minAmount: 1n }),
    ).resolves.toBeUndefined();
  });

  test('an address without code', async () => {
    const eoa = anvil.accounts[9]!.address;
    const check = reader.checkRuleTarget({
      id: 'x',
      kind: 'ERC20_BALANCE',
      contractAddress: eoa,
      minAmount: 1n,
    });
    await expect(check).rejects.toThrow(RuleTargetError);
    await expect(check).rejects.toThrow(`${eoa.toLowerCase()} has no contract code on chain 31337`);
  });

  test('a balance call that reverts names the call and the reason', async () => {
    await expect(
      reader.checkRuleTarget({
        id: 'x',
        kind: 'ERC20_BALANCE',
        contractAddress: tokens.reverter,
        minAmount: 1n,
      }),
    ).rejects.toThrow(
      /^balanceOf\(address\) reverted on 0x[0-9a-f]{40} \(chain 31337\): balanceOf disabled; is it an ERC-20 contract\?$/,
    );
    // A contract without balanceOf (and no fallback) reverts without a reason.
    await expect(
      reader.checkRuleTarget({
        id: 'x',
        kind: 'ERC1155_BALANCE',
        contractAddress: tokens.multicall3,
        tokenId: 1n,
        minAmount: 1n,
      }),
    ).rejects.toThrow(
      /^balanceOf\(address,uint256\) reverted on 0x[0-9a-f]{40} \(chain 31337\); is it an ERC-1155/,
    );
  });

  test('malformed rules', async () => {
    await expect(
      reader.checkRuleTarget({
        id: 'x',
        kind: 'ERC1155_BALANCE',
        contractAddress: tokens.erc1155,
        minAmount: 1n,
      }),
    ).rejects.toThrow(new RuleTargetError('tokenId is required for ERC1155_BALANCE rules'));
    await expect(reader.checkRuleTarget({ id: 'x', kind: 'ERC20_BALANCE', minAmount: 1n })).rejects.toThrow(
      'contractAddress is required for ERC20_BALANCE rules',
    );
    await expect(
      reader.checkRuleTarget({
        id: 'x',
        kind: 'ERC20_BALANCE',
        contractAddress: '0xzz' as Address,
        minAmount: 1n,
      }),
    ).rejects.toThrow(
      new RuleTargetError(
        'contractAddress: "0xzz" is not an address (expected 0x followed by 40 hex digits)',
      ),
    );
  });
});

test('200 wallets x 3 rules are read in a couple of eth_calls', async () => {
  const wallets = Array.from({ length: 200 }, () => freshWallet().address);
  await actions.mintErc20(wallets[17]!, 50n);
  await actions.mintErc1155(wallets[42]!, 9n, 1n);
  await actions.setNativeBalance(wallets[199]!, 123n);
  const rules: RuleSpec[] = [
    { id: 'erc20', kind: 'ERC20_BALANCE', contractAddress: tokens.erc20, minAmount: 50n },
    { id: 'native', kind: 'NATIVE_BALANCE', minAmount: 100n },
    { id: 'erc1155', kind: 'ERC1155_BALANCE', contractAddress: tokens.erc1155, tokenId: 9n, minAmount: 1n },
  ];
  await reader.chainId();
  proxy.resetCounters();
  const evaluations = await reader.evaluateRules(rules, wallets);
  expect(proxy.methods).toEqual({ eth_call: 2 });
  expect(proxy.requests).toBe(2);
  expect(evaluations).toHaveLength(600);
  const eligible = evaluations.filter((e) => e.eligible).map((e) => `${e.ruleId}:${e.wallet}`);
  expect(eligible.sort()).toEqual(
    [`erc20:${wallets[17]}`, `erc1155:${wallets[42]}`, `native:${wallets[199]}`].sort(),
  );
  expect(evaluations.every((e) => e.error === undefined && e.balance !== undefined)).toBe(true);
  expect(evaluations[200]).toMatchObject({ ruleId: 'native', wallet: wallets[0] });
});

test('a multicall address without a contract is a clear error, not ineligibility', async () => {
  const noMulticall = createChainReader({
    rpcUrls: [anvil.url],
    multicallAddress: anvil.accounts[8]!.address,
  });
  const rule: RuleSpec = { id: 'n', kind: 'NATIVE_BALANCE', minAmount: 1n };
  await expect(noMulticall.evaluateRules([rule], [anvil.accounts[0]!.address])).rejects.toThrow(
    /multicall contract 0x[0-9a-f]{40} returned nothing on chain 31337: is Multicall3 deployed there\? Set multicallAddress/,
  );
});
