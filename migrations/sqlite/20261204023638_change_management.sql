-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Add column "grandfathered_until" to table: "subscriptions"
ALTER TABLE `subscriptions` ADD COLUMN `grandfathered_until` datetime NULL;
-- Create "new_plans" table
CREATE TABLE `new_plans` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `name` text NOT NULL, `period` text NOT NULL, `included_credits` text NOT NULL, `price_per_credit` text NOT NULL, `platform_fee` text NOT NULL, `currency` text NOT NULL DEFAULT ('USD'), `register_name` text NOT NULL, `overage_mode` text NOT NULL, `overage_price` text NULL, `auto_top_up_threshold` text NULL, `auto_top_up_credits` text NULL, `auto_top_up_cap` integer NULL, `borrow_limit` text NULL, `rollover_mode` text NOT NULL, `rollover_cap` text NULL, `on_demand_price` text NULL, `on_demand_expiry_days` integer NULL, `incentive_cap_per_period` text NULL, `incentive_cap_per_member` text NULL, `incentive_expiry_days` integer NOT NULL DEFAULT (14), `family` text NULL, `tier` integer NULL, `change_credits` text NOT NULL DEFAULT ('PRORATE'), `entitled_actions` json NULL, `seed_credits` text NULL, `member_limit` text NULL, `term_end_credits` text NOT NULL DEFAULT ('ROLL'), `term_end_refund_rate` text NULL, `on_demand_tiers` json NULL, `overage_tiers` json NULL, `segment_prices` json NULL, `notice_days` integer NOT NULL DEFAULT (30));
-- Copy rows from old table "plans" to new temporary table "new_plans"
INSERT INTO `new_plans` (`id`, `created_at`, `name`, `period`, `included_credits`, `price_per_credit`, `platform_fee`, `currency`, `register_name`, `overage_mode`, `overage_price`, `auto_top_up_threshold`, `auto_top_up_credits`, `auto_top_up_cap`, `borrow_limit`, `rollover_mode`, `rollover_cap`, `on_demand_price`, `on_demand_expiry_days`, `incentive_cap_per_period`, `incentive_cap_per_member`, `incentive_expiry_days`, `family`, `tier`, `change_credits`, `entitled_actions`, `seed_credits`, `member_limit`, `term_end_credits`, `term_end_refund_rate`, `on_demand_tiers`, `overage_tiers`, `segment_prices`) SELECT `id`, `created_at`, `name`, `period`, `included_credits`, `price_per_credit`, `platform_fee`, `currency`, `register_name`, `overage_mode`, `overage_price`, `auto_top_up_threshold`, `auto_top_up_credits`, `auto_top_up_cap`, `borrow_limit`, `rollover_mode`, `rollover_cap`, `on_demand_price`, `on_demand_expiry_days`, `incentive_cap_per_period`, `incentive_cap_per_member`, `incentive_expiry_days`, `family`, `tier`, `change_credits`, `entitled_actions`, `seed_credits`, `member_limit`, `term_end_credits`, `term_end_refund_rate`, `on_demand_tiers`, `overage_tiers`, `segment_prices` FROM `plans`;
-- Drop "plans" table after copying rows
DROP TABLE `plans`;
-- Rename temporary table "new_plans" to "plans"
ALTER TABLE `new_plans` RENAME TO `plans`;
-- Create index "plan_name" to table: "plans"
CREATE UNIQUE INDEX `plan_name` ON `plans` (`name`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
