-- Add column "refund_of" to table: "charges"
ALTER TABLE `charges` ADD COLUMN `refund_of` integer NULL;
-- Create index "charge_grant_id" to table: "charges"
CREATE INDEX `charge_grant_id` ON `charges` (`grant_id`);
