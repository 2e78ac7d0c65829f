-- Add column "overage_cap_credits" to table: "organizations"
ALTER TABLE `organizations` ADD COLUMN `overage_cap_credits` text NULL;
-- Add column "overage_cap_amount" to table: "organizations"
ALTER TABLE `organizations` ADD COLUMN `overage_cap_amount` text NULL;
