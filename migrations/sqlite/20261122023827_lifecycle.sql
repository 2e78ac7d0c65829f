-- Create "charges" table
CREATE TABLE `charges` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `kind` text NOT NULL, `credits` text NOT NULL, `amount` text NOT NULL, `currency` text NOT NULL, `subscription_id` integer NULL, `period_start` datetime NULL, `usage_event_id` integer NULL, `grant_id` integer NULL, `memo` text NULL);
-- Create index "charge_organization_id_id" to table: "charges"
CREATE INDEX `charge_organization_id_id` ON `charges` (`organization_id`, `id`);
-- Create "plans" table
CREATE TABLE `plans` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `name` text NOT NULL, `period` text NOT NULL, `included_credits` text NOT NULL, `price_per_credit` text NOT NULL, `platform_fee` text NOT NULL, `currency` text NOT NULL DEFAULT ('USD'), `register_name` text NOT NULL, `overage_mode` text NOT NULL, `overage_price` text NULL, `auto_top_up_threshold` text NULL, `auto_top_up_credits` text NULL, `borrow_limit` text NULL, `rollover_mode` text NOT NULL, `rollover_cap` text NULL, `on_demand_price` text NULL, `on_demand_expiry_days` integer NULL);
-- Create index "plan_name" to table: "plans"
CREATE UNIQUE INDEX `plan_name` ON `plans` (`name`);
-- Create "subscriptions" table
CREATE TABLE `subscriptions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `plan_id` integer NOT NULL, `pool_id` integer NOT NULL, `starts_at` datetime NOT NULL, `ends_at` datetime NULL, `term_periods` integer NULL, `auto_renew` bool NOT NULL DEFAULT (true), `time_zone` text NOT NULL DEFAULT ('UTC'), `commitment` text NOT NULL, `register_version` integer NULL, `next_period` integer NOT NULL DEFAULT (0), `next_period_at` datetime NULL);
-- Create index "subscription_organization_id" to table: "subscriptions"
CREATE INDEX `subscription_organization_id` ON `subscriptions` (`organization_id`);
-- Create index "subscription_next_period_at" to table: "subscriptions"
CREATE INDEX `subscription_next_period_at` ON `subscriptions` (`next_period_at`);
-- Create "subscription_periods" table
CREATE TABLE `subscription_periods` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `subscription_id` integer NOT NULL, `period_index` integer NOT NULL, `starts_at` datetime NOT NULL, `ends_at` datetime NOT NULL, `expired` text NOT NULL, `rolled_over` text NOT NULL, `allocated` text NOT NULL);
-- Create index "subscriptionperiod_subscription_id_period_index" to table: "subscription_periods"
CREATE UNIQUE INDEX `subscriptionperiod_subscription_id_period_index` ON `subscription_periods` (`subscription_id`, `period_index`);
