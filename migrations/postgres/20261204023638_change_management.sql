-- Modify "plans" table
ALTER TABLE "plans" ADD COLUMN "notice_days" bigint NOT NULL DEFAULT 30;
-- Modify "subscriptions" table
ALTER TABLE "subscriptions" ADD COLUMN "grandfathered_until" timestamptz NULL;
