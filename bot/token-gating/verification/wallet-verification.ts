// Linking a wallet: `/verify` hands out a one-time nonce inside a message to sign; the signed
// message comes back to the public route; viem checks the EIP-191 signature. A nonce works once
// and expires; everything about one link is written in one transaction or not at all.
import { randomBytes } from 'node:crypto';
import { InvalidAddressError, normaliseAddress, verifyWalletSignature } from '../../chain/index.js';
import type { Database } from '../../database/index.js';

export const NONCE_TTL_MS = 10 * 60_000;

export class VerificationError extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 410,
    message: string,
  ) {
    super(message);
  }
}

export function verificationMessage(o: {
  botName: string;
  communityId: string;
  userId: string;
  nonce: string;
  expiresAt: Date;
}): string {
  return [
    `Link this wallet to your Discord account for ${o.botName}.`,
    `Server: ${o.communityId}`,
    `Discord user: ${o.userId}`,
    `Nonce: ${o.nonce}`,
    `Expires: ${o.expiresAt.toISOString()}`,
    'Signing is free and does not send a transaction.',
  ].join('\n');
}

export async function createVerification(
  db: Database,
  o: { botName: string; communityId: string; userId: string; now?: Date; ttlMs?: number },
): Promise<{ nonce: string; message: string; expiresAt: Date }> {
  const now = o.now ?? new Date();
  const nonce = randomBytes(16).toString('hex');
  const expiresAt = new Date(now.getTime() + (o.ttlMs ?? NONCE_TTL_MS));
  const message = verificationMessage({ ...o, nonce, expiresAt });
  await db.prisma.community.upsert({
    where: { id: o.communityId },
    create: { id: o.communityId },
    update: {},
  });
  await db.withCommunity(o.communityId, (tx) =>
    tx.verificationNonce.create({
      data: { nonce, communityId: o.communityId, userId: o.userId, message, expiresAt },
    }),
  );
  return { nonce, message, expiresAt };
}

export async function pendingVerification(db: Database, communityId: string, nonce: string) {
  return usable(
    await db.withCommunity(communityId, (tx) => tx.verificationNonce.findUnique({ where: { nonce } })),
  );
}

/** The nonce row if it can still be used; else the error the member sees. */
function usable<T extends { usedAt: Date | null; expiresAt: Date }>(row: T | null): T {
  if (!row) throw new VerificationError(404, 'This verification link is unknown. Run /verify again.');
  if (row.usedAt)
    throw new VerificationError(409, 'This verification link was already used. Run /verify again.');
  if (row.expiresAt.getTime() <= Date.now())
    throw new VerificationError(410, 'This verification link has expired. Run /verify again.');
  return row;
}

export async function completeVerification(
  db: Database,
  o: { communityId: string; nonce: string; address: unknown; signature: unknown },
): Promise<{ userId: string; address: `0x${string}` }> {
  if (typeof o.address !== 'string') throw new VerificationError(400, '`address` is required.');
  if (typeof o.signature !== 'string' || !/^0x[0-9a-fA-F]{130}$/.test(o.signature))
    throw new VerificationError(400, '`signature` must be a 65-byte hex signature (0x + 130 hex digits).');
  let address: `0x${string}`;
  try {
    address = normaliseAddress(o.address, 'address');
  } catch (err) {
    if (err instanceof InvalidAddressError) throw new VerificationError(400, err.message);
    throw err;
  }
  const signature = o.signature as `0x${string}`;
  return db.withCommunity(o.communityId, async (tx) => {
    const row = usable(await tx.verificationNonce.findUnique({ where: { nonce: o.nonce } }));
    if (!(await verifyWalletSignature({ address, message: row.message, signature })))
      throw new VerificationError(400, `The signature was not made by ${address} over this link's message.`);
    // Conditional update: of two concurrent submissions only one can take the nonce.
    const taken = await tx.verificationNonce.updateMany({
      where: { nonce: o.nonce, usedAt: null },
      data: { usedAt: new Date() },
    });
    if (taken.count !== 1)
      throw new VerificationError(409, 'This verification link was already used. Run /verify again.');
    const existing = await tx.wallet.findUnique({
      where: { communityId_address: { communityId: o.communityId, address } },
    });
    if (existing && existing.userId !== row.userId)
      throw new VerificationError(409, `${address} is already linked to another member of this server.`);
    await tx.member.upsert({
      where: { communityId_userId: { communityId: o.communityId, userId: row.userId } },
      create: { communityId: o.communityId, userId: row.userId },
      update: {},
    });
    if (existing) await tx.wallet.update({ where: { id: existing.id }, data: { verifiedAt: new Date() } });
    else
      await tx.wallet
        .create({ data: { communityId: o.communityId, userId: row.userId, address } })
        .catch((err: unknown) => {
          // Another member linked the same address at the same moment: the unique key decided.
          if ((err as { code?: string }).code === 'P2002')
            throw new VerificationError(
              409,
              `${address} is already linked to another member of this server.`,
            );
          throw err;
        });
    return { userId: row.userId, address };
  });
}

/** The repeating task (and its schedule id) that deletes expired nonces. */
export const NONCE_PURGE_TASK = 'verification-nonce-purge';
export const NONCE_PURGE_INTERVAL_ENV = 'SHARDWARDEN_NONCE_PURGE_INTERVAL_SECONDS';
/** Expired nonces stay this long, so a late click still says "expired", not "unknown". */
export const NONCE_PURGE_GRACE_MS = 60 * 60_000;

/**
 * Deletes nonces that expired more than the grace period ago, community by community (row-level
 * security lets a transaction see one community only), at most `batch` rows per community and
 * `maxRows` per run, so one run stays short; what is left goes at the next run.
 */
export async function purgeExpiredNonces(
  db: Database,
  o: { batch?: number; maxRows?: number; now?: Date } = {},
): Promise<number> {
  const batch = o.batch ?? 1_000;
  const maxRows = o.maxRows ?? 20_000;
  const before = new Date((o.now ?? new Date()).getTime() - NONCE_PURGE_GRACE_MS);
  let deleted = 0;
  let after = '';
  while (deleted < maxRows) {
    const page = await db.prisma.community.findMany({
      where: { id: { gt: after } },
      orderBy: { id: 'asc' },
      select: { id: true },
      take: 500,
    });
    for (const { id } of page) {
      const limit = Math.min(batch, maxRows - deleted);
      if (limit <= 0) break;
      deleted += await db.withCommunity(
        id,
        (tx) => tx.$executeRaw`DELETE FROM verification_nonces WHERE nonce IN (
          SELECT nonce FROM verification_nonces WHERE expires_at < ${before} LIMIT ${limit})`,
      );
    }
    if (page.length < 500) break;
    after = page[page.length - 1]!.id;
  }
  return deleted;
}
