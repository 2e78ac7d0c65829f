-- Modify "grants" table
ALTER TABLE "grants" ADD COLUMN "payment" character varying NOT NULL DEFAULT 'PAID', ADD COLUMN "payment_due_at" timestamptz NULL;
-- Create index "grant_payment_payment_due_at" to table: "grants"
CREATE INDEX "grant_payment_payment_due_at" ON "grants" ("payment", "payment_due_at");
