import { parseGateRule } from '../../bot/token-gating/rules/gate-rule.js';
import { UserFacingError } from '../../bot/worker/handlers/bot-module.js';

const TOKEN = '0x5FbDB2315678afecb367f032d93F642f64180aa3';

describe('parseGateRule', () => {
  test('valid rules of each kind', () => {
    expect(parseGateRule({ kind: 'erc20', roleId: '42', minAmount: '1_000', contract: TOKEN })).toEqual({
      kind: 'ERC20_BALANCE',
      roleId: '42',
      contractAddress: TOKEN.toLowerCase(),
      minAmount: 1000n,
    });
    expect(parseGateRule({ kind: 'native', roleId: '42', minAmount: '5' })).toEqual({
      kind: 'NATIVE_BALANCE',
      roleId: '42',
      minAmount: 5n,
    });
    expect(parseGateRule({ kind: 'erc721', roleId: '42', contract: TOKEN }).minAmount).toBe(1n);
    expect(
      parseGateRule({ kind: 'erc1155', roleId: '42', contract: TOKEN, tokenId: '7', minAmount: '2' }).tokenId,
    ).toBe(7n);
  });

  test.each([
    [{ kind: 'erc777', roleId: '1', minAmount: '1' }, '`type` must be one of'],
    [{ kind: 'erc20', roleId: '1', minAmount: '1' }, 'needs a `contract`'],
    [{ kind: 'erc20', roleId: '1', minAmount: '1', contract: '0x1234' }, '0x1234'],
    [{ kind: 'erc20', roleId: '1', minAmount: '1.5', contract: TOKEN }, '`min` must be a whole number'],
    [{ kind: 'erc20', roleId: '1', minAmount: '-3', contract: TOKEN }, '`min` must be a whole number'],
    [{ kind: 'erc20', roleId: '1', minAmount: '0', contract: TOKEN }, 'at least 1'],
    [
      { kind: 'erc20', roleId: '1', minAmount: (2n ** 256n).toString(), contract: TOKEN },
      'larger than a uint256',
    ],
    [{ kind: 'native', roleId: '1', minAmount: '1', contract: TOKEN }, 'takes no `contract`'],
    [{ kind: 'erc1155', roleId: '1', minAmount: '1', contract: TOKEN }, 'needs a `token-id`'],
    [{ kind: 'erc20', roleId: '1', minAmount: '1', contract: TOKEN, tokenId: '1' }, 'Only `erc1155`'],
    [{ kind: 'erc20', roleId: '1', contract: TOKEN }, 'needs `min`'],
  ])('%j is refused with a message naming the problem', (input, message) => {
    expect(() => parseGateRule(input)).toThrow(UserFacingError);
    expect(() => parseGateRule(input)).toThrow(message);
  });
});
