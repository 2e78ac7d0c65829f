-- Modify "charges" table
ALTER TABLE "charges" ADD COLUMN "refund_of" bigint NULL;
-- Create index "charge_grant_id" to table: "charges"
CREATE INDEX "charge_grant_id" ON "charges" ("grant_id");
