-- Add column "member_limit" to table: "plans"
ALTER TABLE `plans` ADD COLUMN `member_limit` text NULL;
