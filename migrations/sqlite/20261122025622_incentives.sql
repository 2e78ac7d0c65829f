-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_plans" table
CREATE TABLE `new_plans` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `name` text NOT NULL, `period` text NOT NULL, `included_credits` text NOT NULL, `price_per_credit` text NOT NULL, `platform_fee` text NOT NULL, `currency` text NOT NULL DEFAULT ('USD'), `register_name` text NOT NULL, `overage_mode` text NOT NULL, `overage_price` text NULL, `auto_top_up_threshold` text NULL, `auto_top_up_credits` text NULL, `auto_top_up_cap` integer NULL, `borrow_limit` text NULL, `rollover_mode` text NOT NULL, `rollover_cap` text NULL, `on_demand_price` text NULL, `on_demand_expiry_days` integer NULL, `incentive_cap_per_period` text NULL, `incentive_cap_per_member` text NULL, `incentive_expiry_days` integer NOT NULL DEFAULT (14));
-- Copy rows from old table "plans" to new temporary table "new_plans"
INSERT INTO `new_plans` (`id`, `created_at`, `name`, `period`, `included_credits`, `price_per_credit`, `platform_fee`, `currency`, `register_name`, `overage_mode`, `overage_price`, `auto_top_up_threshold`, `auto_top_up_credits`, `auto_top_up_cap`, `borrow_limit`, `rollover_mode`, `rollover_cap`, `on_demand_price`, `on_demand_expiry_days`) SELECT `id`, `created_at`, `name`, `period`, `included_credits`, `price_per_credit`, `platform_fee`, `currency`, `register_name`, `overage_mode`, `overage_price`, `auto_top_up_threshold`, `auto_top_up_credits`, `auto_top_up_cap`, `borrow_limit`, `rollover_mode`, `rollover_cap`, `on_demand_price`, `on_demand_expiry_days` FROM `plans`;
-- Drop "plans" table after copying rows
DROP TABLE `plans`;
-- Rename temporary table "new_plans" to "plans"
ALTER TABLE `new_plans` RENAME TO `plans`;
-- Create index "plan_name" to table: "plans"
CREATE UNIQUE INDEX `plan_name` ON `plans` (`name`);
-- Create "incentive_awards" table
CREATE TABLE `incentive_awards` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `pool_id` integer NOT NULL, `behavior` text NOT NULL, `grant_id` integer NOT NULL, `policy_id` integer NOT NULL, `policy_version` integer NOT NULL, `credits` text NOT NULL, `period_start` datetime NOT NULL);
-- Create index "incentiveaward_pool_id_behavior" to table: "incentive_awards"
CREATE UNIQUE INDEX `incentiveaward_pool_id_behavior` ON `incentive_awards` (`pool_id`, `behavior`);
-- Create index "incentiveaward_organization_id_period_start" to table: "incentive_awards"
CREATE INDEX `incentiveaward_organization_id_period_start` ON `incentive_awards` (`organization_id`, `period_start`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
