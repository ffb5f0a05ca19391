import fc from 'fast-check';
import { computeRoleChanges, type SyncRule } from '../../bot/token-gating/role-sync/role-changes.js';
import type { RuleEvaluation } from '../../bot/chain/index.js';

const A = '0x00000000000000000000000000000000000000aa' as const;
const B = '0x00000000000000000000000000000000000000bb' as const;
const C = '0x00000000000000000000000000000000000000cc' as const;
const rules: SyncRule[] = [
  { id: 'r-gold', roleId: 'gold', minAmount: 100n },
  { id: 'r-nft', roleId: 'holder', minAmount: 1n },
  { id: 'r-alt', roleId: 'holder', minAmount: 50n },
];
const wallets = [
  { userId: 'u1', address: A },
  { userId: 'u1', address: B },
  { userId: 'u2', address: C },
];
const ev = (
  ruleId: string,
  wallet: `0x${string}`,
  balance: bigint | undefined,
  error?: string,
): RuleEvaluation => ({
  ruleId,
  wallet,
  ...(balance !== undefined ? { balance } : {}),
  eligible: false,
  ...(error ? { error } : {}),
});

describe('computeRoleChanges', () => {
  test('balances of all of a member’s wallets add up; any rule of a role qualifies', () => {
    const changes = computeRoleChanges({
      rules,
      wallets,
      evaluations: [
        ev('r-gold', A, 60n),
        ev('r-gold', B, 40n),
        ev('r-gold', C, 99n),
        ev('r-nft', A, 0n),
        ev('r-nft', B, 0n),
        ev('r-nft', C, 0n),
        ev('r-alt', A, 0n),
        ev('r-alt', B, 0n),
        ev('r-alt', C, 50n),
      ],
      assignments: [],
    });
    expect(changes.grant).toEqual([
      { userId: 'u1', roleId: 'gold', ruleId: 'r-gold' },
      { userId: 'u2', roleId: 'holder', ruleId: 'r-alt' },
    ]);
    expect(changes.revoke).toEqual([]);
  });

  test('removes only roles this bot granted, including roles whose rule is gone', () => {
    const changes = computeRoleChanges({
      rules: [rules[0]!],
      wallets,
      evaluations: [ev('r-gold', A, 0n), ev('r-gold', B, 0n), ev('r-gold', C, 500n)],
      assignments: [
        { userId: 'u1', roleId: 'gold' },
        { userId: 'u2', roleId: 'gold' },
        { userId: 'u3', roleId: 'old-role' },
      ],
    });
    expect(changes.grant).toEqual([]);
    expect(changes.revoke).toEqual([
      { userId: 'u1', roleId: 'gold' },
      { userId: 'u3', roleId: 'old-role' },
    ]);
  });

  test('a failed evaluation leaves the role as it is instead of removing it', () => {
    const changes = computeRoleChanges({
      rules: [rules[0]!],
      wallets,
      evaluations: [ev('r-gold', A, undefined, 'reverted'), ev('r-gold', B, 10n), ev('r-gold', C, 0n)],
      assignments: [
        { userId: 'u1', roleId: 'gold' },
        { userId: 'u2', roleId: 'gold' },
      ],
    });
    expect(changes.undecided).toEqual([{ userId: 'u1', roleId: 'gold' }]);
    expect(changes.revoke).toEqual([{ userId: 'u2', roleId: 'gold' }]);
  });

  test('restricting to some members leaves the others alone', () => {
    const changes = computeRoleChanges({
      rules: [rules[0]!],
      wallets,
      evaluations: [ev('r-gold', A, 100n), ev('r-gold', C, 100n)],
      assignments: [],
      userIds: ['u2'],
    });
    expect(changes.grant).toEqual([{ userId: 'u2', roleId: 'gold', ruleId: 'r-gold' }]);
  });

  test('idempotent: applying the changes and computing again yields nothing', () => {
    const users = ['u1', 'u2', 'u3'];
    const addresses = [A, B, C];
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 0n, max: 200n }), { minLength: 9, maxLength: 9 }),
        fc.subarray(users.flatMap((u) => ['gold', 'holder'].map((r) => ({ userId: u, roleId: r })))),
        (balances, assignments) => {
          const ws = addresses.map((address, i) => ({ userId: users[i % 2]!, address }));
          const evaluations = rules.flatMap((r, ri) =>
            addresses.map((a, ai) => ev(r.id, a, balances[ri * 3 + ai]!)),
          );
          const first = computeRoleChanges({ rules, wallets: ws, evaluations, assignments });
          const after = [
            ...assignments.filter(
              (a) => !first.revoke.some((r) => r.userId === a.userId && r.roleId === a.roleId),
            ),
            ...first.grant.map(({ userId, roleId }) => ({ userId, roleId })),
          ];
          const second = computeRoleChanges({ rules, wallets: ws, evaluations, assignments: after });
          return second.grant.length === 0 && second.revoke.length === 0;
        },
      ),
    );
  });
});
