-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_pools" table
CREATE TABLE `new_pools` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `kind` text NOT NULL, `name` text NOT NULL, `budget_amount` text NULL, `budget_period` text NULL, `budget_hard` bool NOT NULL DEFAULT (false), `organization_id` integer NOT NULL, `parent_id` integer NULL, CONSTRAINT `pools_organizations_pools` FOREIGN KEY (`organization_id`) REFERENCES `organizations` (`id`) ON DELETE NO ACTION, CONSTRAINT `pools_pools_children` FOREIGN KEY (`parent_id`) REFERENCES `pools` (`id`) ON DELETE SET NULL);
-- Copy rows from old table "pools" to new temporary table "new_pools"
INSERT INTO `new_pools` (`id`, `created_at`, `kind`, `name`, `organization_id`, `parent_id`) SELECT `id`, `created_at`, `kind`, `name`, `organization_id`, `parent_id` FROM `pools`;
-- Drop "pools" table after copying rows
DROP TABLE `pools`;
-- Rename temporary table "new_pools" to "pools"
ALTER TABLE `new_pools` RENAME TO `pools`;
-- Create index "pool_organization_id" to table: "pools"
CREATE INDEX `pool_organization_id` ON `pools` (`organization_id`);
-- Create "alerts" table
CREATE TABLE `alerts` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `pool_id` integer NOT NULL, `kind` text NOT NULL, `period_start` datetime NOT NULL, `message` text NOT NULL, `usage_event_id` integer NULL);
-- Create index "alert_pool_id_kind_period_start" to table: "alerts"
CREATE UNIQUE INDEX `alert_pool_id_kind_period_start` ON `alerts` (`pool_id`, `kind`, `period_start`);
-- Create index "alert_organization_id_id" to table: "alerts"
CREATE INDEX `alert_organization_id_id` ON `alerts` (`organization_id`, `id`);
-- Create "pool_spends" table
CREATE TABLE `pool_spends` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `pool_id` integer NOT NULL, `period_start` datetime NOT NULL, `spent` text NOT NULL);
-- Create index "poolspend_pool_id_period_start" to table: "pool_spends"
CREATE UNIQUE INDEX `poolspend_pool_id_period_start` ON `pool_spends` (`pool_id`, `period_start`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
