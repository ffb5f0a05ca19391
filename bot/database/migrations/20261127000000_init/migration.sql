-- Shardwarden's first schema. Written by hand to match ../../schema.prisma; the parts Prisma's
-- schema language cannot express (CHECK constraints, NULLS NOT DISTINCT, row-level security)
-- are marked below. See docs/database.md.

-- CreateEnum
CREATE TYPE "gate_rule_kind" AS ENUM ('NATIVE_BALANCE', 'ERC20_BALANCE', 'ERC721_OWNERSHIP', 'ERC1155_BALANCE');

-- CreateTable
CREATE TABLE "communities" (
    "id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "communities_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "members" (
    "community_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "members_pkey" PRIMARY KEY ("community_id","user_id")
);

-- CreateTable
CREATE TABLE "wallets" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "community_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "address" TEXT NOT NULL,
    "verified_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "wallets_pkey" PRIMARY KEY ("id"),
    -- Not in schema.prisma: one spelling per address, so the unique key really is unique.
    CONSTRAINT "wallets_address_check" CHECK ("address" ~ '^0x[0-9a-f]{40}$')
);

-- CreateTable
CREATE TABLE "gate_rules" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "community_id" TEXT NOT NULL,
    "kind" "gate_rule_kind" NOT NULL,
    "chain_id" INTEGER NOT NULL,
    "contract_address" TEXT,
    "token_id" TEXT,
    "min_amount" TEXT NOT NULL,
    "role_id" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "gate_rules_pkey" PRIMARY KEY ("id"),
    -- Not in schema.prisma: the shape of each kind of rule.
    CONSTRAINT "gate_rules_chain_id_check" CHECK ("chain_id" > 0),
    CONSTRAINT "gate_rules_contract_address_check" CHECK (
        ("kind" = 'NATIVE_BALANCE') = ("contract_address" IS NULL)
        AND ("contract_address" IS NULL OR "contract_address" ~ '^0x[0-9a-f]{40}$')
    ),
    CONSTRAINT "gate_rules_token_id_check" CHECK (
        ("kind" = 'ERC1155_BALANCE') = ("token_id" IS NOT NULL)
        AND ("token_id" IS NULL OR ("token_id" ~ '^[0-9]+$' AND char_length("token_id") <= 78))
    ),
    -- uint256 in base units: at most 78 decimal digits.
    CONSTRAINT "gate_rules_min_amount_check" CHECK ("min_amount" ~ '^[0-9]+$' AND char_length("min_amount") <= 78)
);

-- CreateTable
CREATE TABLE "role_assignments" (
    "community_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "role_id" TEXT NOT NULL,
    "rule_id" UUID,
    "granted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "role_assignments_pkey" PRIMARY KEY ("community_id","user_id","role_id")
);

-- CreateTable
CREATE TABLE "verification_nonces" (
    "nonce" TEXT NOT NULL,
    "community_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "used_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "verification_nonces_pkey" PRIMARY KEY ("nonce")
);

-- CreateIndex
CREATE INDEX "wallets_community_id_user_id_idx" ON "wallets"("community_id", "user_id");

-- CreateIndex
CREATE UNIQUE INDEX "wallets_community_id_address_key" ON "wallets"("community_id", "address");

-- CreateIndex (NULLS NOT DISTINCT is not in schema.prisma: a second identical native rule,
-- whose contract_address and token_id are null, is a duplicate too)
CREATE UNIQUE INDEX "gate_rules_no_duplicates_key" ON "gate_rules"("community_id", "kind", "chain_id", "contract_address", "token_id", "min_amount", "role_id") NULLS NOT DISTINCT;

-- CreateIndex
CREATE INDEX "role_assignments_rule_id_idx" ON "role_assignments"("rule_id");

-- CreateIndex
CREATE INDEX "verification_nonces_community_id_user_id_idx" ON "verification_nonces"("community_id", "user_id");

-- CreateIndex
CREATE INDEX "verification_nonces_expires_at_idx" ON "verification_nonces"("expires_at");

-- AddForeignKey
ALTER TABLE "members" ADD CONSTRAINT "members_community_id_fkey" FOREIGN KEY ("community_id") REFERENCES "communities"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "wallets" ADD CONSTRAINT "wallets_community_id_user_id_fkey" FOREIGN KEY ("community_id", "user_id") REFERENCES "members"("community_id", "user_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "gate_rules" ADD CONSTRAINT "gate_rules_community_id_fkey" FOREIGN KEY ("community_id") REFERENCES "communities"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "role_assignments" ADD CONSTRAINT "role_assignments_community_id_user_id_fkey" FOREIGN KEY ("community_id", "user_id") REFERENCES "members"("community_id", "user_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "role_assignments" ADD CONSTRAINT "role_assignments_rule_id_fkey" FOREIGN KEY ("rule_id") REFERENCES "gate_rules"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "verification_nonces" ADD CONSTRAINT "verification_nonces_community_id_fkey" FOREIGN KEY ("community_id") REFERENCES "communities"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Row-level security (not in schema.prisma). Each tenant table shows and accepts only the rows
-- of the community named by the transaction-local setting app.community_id; with no setting,
-- current_setting(..., true) is NULL and nothing matches. FORCE applies it to the table owner
-- too. Superusers and BYPASSRLS roles still skip it: the application's role must be neither.
ALTER TABLE "members" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "members" FORCE ROW LEVEL SECURITY;
CREATE POLICY "members_tenant" ON "members"
    USING ("community_id" = NULLIF(current_setting('app.community_id', true), ''))
    WITH CHECK ("community_id" = NULLIF(current_setting('app.community_id', true), ''));

ALTER TABLE "wallets" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "wallets" FORCE ROW LEVEL SECURITY;
CREATE POLICY "wallets_tenant" ON "wallets"
    USING ("community_id" = NULLIF(current_setting('app.community_id', true), ''))
    WITH CHECK ("community_id" = NULLIF(current_setting('app.community_id', true), ''));

ALTER TABLE "gate_rules" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "gate_rules" FORCE ROW LEVEL SECURITY;
CREATE POLICY "gate_rules_tenant" ON "gate_rules"
    USING ("community_id" = NULLIF(current_setting('app.community_id', true), ''))
    WITH CHECK ("community_id" = NULLIF(current_setting('app.community_id', true), ''));

ALTER TABLE "role_assignments" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "role_assignments" FORCE ROW LEVEL SECURITY;
CREATE POLICY "role_assignments_tenant" ON "role_assignments"
    USING ("community_id" = NULLIF(current_setting('app.community_id', true), ''))
    WITH CHECK ("community_id" = NULLIF(current_setting('app.community_id', true), ''));

ALTER TABLE "verification_nonces" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "verification_nonces" FORCE ROW LEVEL SECURITY;
CREATE POLICY "verification_nonces_tenant" ON "verification_nonces"
    USING ("community_id" = NULLIF(current_setting('app.community_id', true), ''))
    WITH CHECK ("community_id" = NULLIF(current_setting('app.community_id', true), ''));
