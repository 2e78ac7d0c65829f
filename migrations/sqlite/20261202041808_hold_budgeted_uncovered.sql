-- Add column "budgeted" to table: "holds"
ALTER TABLE `holds` ADD COLUMN `budgeted` text NULL;
