-- Modify "holds" table
ALTER TABLE "holds" ADD COLUMN "budgeted" numeric NULL;
