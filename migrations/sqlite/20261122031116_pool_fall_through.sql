-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_pools" table
CREATE TABLE `new_pools` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `kind` text NOT NULL, `name` text NOT NULL, `fall_through` bool NOT NULL DEFAULT (true), `budget_amount` text NULL, `budget_period` text NULL, `budget_hard` bool NOT NULL DEFAULT (false), `organization_id` integer NOT NULL, `parent_id` integer NULL, CONSTRAINT `pools_organizations_pools` FOREIGN KEY (`organization_id`) REFERENCES `organizations` (`id`) ON DELETE NO ACTION, CONSTRAINT `pools_pools_children` FOREIGN KEY (`parent_id`) REFERENCES `pools` (`id`) ON DELETE SET NULL);
-- Copy rows from old table "pools" to new temporary table "new_pools"
INSERT INTO `new_pools` (`id`, `created_at`, `kind`, `name`, `budget_amount`, `budget_period`, `budget_hard`, `organization_id`, `parent_id`) SELECT `id`, `created_at`, `kind`, `name`, `budget_amount`, `budget_period`, `budget_hard`, `organization_id`, `parent_id` FROM `pools`;
-- Drop "pools" table after copying rows
DROP TABLE `pools`;
-- Rename temporary table "new_pools" to "pools"
ALTER TABLE `new_pools` RENAME TO `pools`;
-- Create index "pool_organization_id" to table: "pools"
CREATE INDEX `pool_organization_id` ON `pools` (`organization_id`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
