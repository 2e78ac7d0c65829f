-- Modify "pools" table
ALTER TABLE "pools" ADD COLUMN "fall_through" boolean NOT NULL DEFAULT true;
