-- Modify "organizations" table
ALTER TABLE "organizations" ADD COLUMN "overage_cap_credits" numeric NULL, ADD COLUMN "overage_cap_amount" numeric NULL;
