-- Modify "plans" table
ALTER TABLE "plans" ADD COLUMN "member_limit" numeric NULL;
