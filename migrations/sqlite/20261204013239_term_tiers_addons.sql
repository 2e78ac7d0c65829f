-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Add column "add_on_id" to table: "charges"
ALTER TABLE `charges` ADD COLUMN `add_on_id` integer NULL;
-- Add column "renewal_plan_id" to table: "subscriptions"
ALTER TABLE `subscriptions` ADD COLUMN `renewal_plan_id` integer NULL;
-- Create "new_plans" table
CREATE TABLE `new_plans` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `name` text NOT NULL, `period` text NOT NULL, `included_credits` text NOT NULL, `price_per_credit` text NOT NULL, `platform_fee` text NOT NULL, `currency` text NOT NULL DEFAULT ('USD'), `register_name` text NOT NULL, `overage_mode` text NOT NULL, `overage_price` text NULL, `auto_top_up_threshold` text NULL, `auto_top_up_credits` text NULL, `auto_top_up_cap` integer NULL, `borrow_limit` text NULL, `rollover_mode` text NOT NULL, `rollover_cap` text NULL, `on_demand_price` text NULL, `on_demand_expiry_days` integer NULL, `incentive_cap_per_period` text NULL, `incentive_cap_per_member` text NULL, `incentive_expiry_days` integer NOT NULL DEFAULT (14), `family` text NULL, `tier` integer NULL, `change_credits` text NOT NULL DEFAULT ('PRORATE'), `entitled_actions` json NULL, `seed_credits` text NULL, `member_limit` text NULL, `term_end_credits` text NOT NULL DEFAULT ('ROLL'), `term_end_refund_rate` text NULL, `on_demand_tiers` json NULL, `overage_tiers` json NULL, `segment_prices` json NULL);
-- Copy rows from old table "plans" to new temporary table "new_plans"
INSERT INTO `new_plans` (`id`, `created_at`, `name`, `period`, `included_credits`, `price_per_credit`, `platform_fee`, `currency`, `register_name`, `overage_mode`, `overage_price`, `auto_top_up_threshold`, `auto_top_up_credits`, `auto_top_up_cap`, `borrow_limit`, `rollover_mode`, `rollover_cap`, `on_demand_price`, `on_demand_expiry_days`, `incentive_cap_per_period`, `incentive_cap_per_member`, `incentive_expiry_days`, `family`, `tier`, `change_credits`, `entitled_actions`, `seed_credits`, `member_limit`) SELECT `id`, `created_at`, `name`, `period`, `included_credits`, `price_per_credit`, `platform_fee`, `currency`, `register_name`, `overage_mode`, `overage_price`, `auto_top_up_threshold`, `auto_top_up_credits`, `auto_top_up_cap`, `borrow_limit`, `rollover_mode`, `rollover_cap`, `on_demand_price`, `on_demand_expiry_days`, `incentive_cap_per_period`, `incentive_cap_per_member`, `incentive_expiry_days`, `family`, `tier`, `change_credits`, `entitled_actions`, `seed_credits`, `member_limit` FROM `plans`;
-- Drop "plans" table after copying rows
DROP TABLE `plans`;
-- Rename temporary table "new_plans" to "plans"
ALTER TABLE `new_plans` RENAME TO `plans`;
-- Create index "plan_name" to table: "plans"
CREATE UNIQUE INDEX `plan_name` ON `plans` (`name`);
-- Create "add_ons" table
CREATE TABLE `add_ons` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `name` text NOT NULL, `credits` text NOT NULL, `fee` text NOT NULL, `currency` text NOT NULL DEFAULT ('USD'), `credit_type` text NOT NULL, `expiry_days` integer NULL);
-- Create index "addon_name" to table: "add_ons"
CREATE UNIQUE INDEX `addon_name` ON `add_ons` (`name`);
-- Create "subscription_add_ons" table
CREATE TABLE `subscription_add_ons` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `subscription_id` integer NOT NULL, `organization_id` integer NOT NULL, `add_on_id` integer NOT NULL, `added_at` datetime NOT NULL, `removed_at` datetime NULL, `actor` text NULL);
-- Create index "subscriptionaddon_subscription_id_add_on_id" to table: "subscription_add_ons"
CREATE INDEX `subscriptionaddon_subscription_id_add_on_id` ON `subscription_add_ons` (`subscription_id`, `add_on_id`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
