-- Modify "plans" table
ALTER TABLE "plans" ADD COLUMN "auto_top_up_cap" bigint NULL;
-- Modify "weights" table
ALTER TABLE "weights" ADD COLUMN "degraded_allowed" boolean NOT NULL DEFAULT false;
