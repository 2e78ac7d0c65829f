-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_alerts" table
CREATE TABLE `new_alerts` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NULL, `pool_id` integer NULL, `kind` text NOT NULL, `condition` text NOT NULL DEFAULT (''), `rule_id` integer NULL, `period_start` datetime NOT NULL, `message` text NOT NULL, `usage_event_id` integer NULL, `acknowledged_at` datetime NULL, `acknowledged_by` text NULL);
-- Copy rows from old table "alerts" to new temporary table "new_alerts"
INSERT INTO `new_alerts` (`id`, `created_at`, `organization_id`, `pool_id`, `kind`, `period_start`, `message`, `usage_event_id`) SELECT `id`, `created_at`, `organization_id`, `pool_id`, `kind`, `period_start`, `message`, `usage_event_id` FROM `alerts`;
-- Drop "alerts" table after copying rows
DROP TABLE `alerts`;
-- Rename temporary table "new_alerts" to "alerts"
ALTER TABLE `new_alerts` RENAME TO `alerts`;
-- Create index "alert_pool_id_kind_condition_period_start" to table: "alerts"
CREATE UNIQUE INDEX `alert_pool_id_kind_condition_period_start` ON `alerts` (`pool_id`, `kind`, `condition`, `period_start`);
-- Create index "alert_organization_id_id" to table: "alerts"
CREATE INDEX `alert_organization_id_id` ON `alerts` (`organization_id`, `id`);
-- Create "alert_rules" table
CREATE TABLE `alert_rules` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `pool_id` integer NULL, `kind` text NOT NULL, `threshold` text NULL, `share` bool NOT NULL DEFAULT (false), `name` text NULL, `enabled` bool NOT NULL DEFAULT (true));
-- Create index "alertrule_organization_id" to table: "alert_rules"
CREATE INDEX `alertrule_organization_id` ON `alert_rules` (`organization_id`);
-- Create index "alertrule_enabled" to table: "alert_rules"
CREATE INDEX `alertrule_enabled` ON `alert_rules` (`enabled`);
-- Create "webhook_deliveries" table
CREATE TABLE `webhook_deliveries` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `endpoint_id` integer NOT NULL, `organization_id` integer NULL, `event_id` text NOT NULL, `event_type` text NOT NULL, `payload` text NOT NULL, `status` text NOT NULL DEFAULT ('PENDING'), `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `lease_until` datetime NULL, `last_status_code` integer NULL, `last_error` text NULL, `delivered_at` datetime NULL, `replay_of` integer NULL);
-- Create index "webhookdelivery_status_next_attempt_at" to table: "webhook_deliveries"
CREATE INDEX `webhookdelivery_status_next_attempt_at` ON `webhook_deliveries` (`status`, `next_attempt_at`);
-- Create index "webhookdelivery_endpoint_id_id" to table: "webhook_deliveries"
CREATE INDEX `webhookdelivery_endpoint_id_id` ON `webhook_deliveries` (`endpoint_id`, `id`);
-- Create "webhook_endpoints" table
CREATE TABLE `webhook_endpoints` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NULL, `url` text NOT NULL, `event_types` json NOT NULL, `description` text NULL, `secret` text NOT NULL, `previous_secret` text NULL, `previous_expires_at` datetime NULL, `enabled` bool NOT NULL DEFAULT (true), `disabled_reason` text NULL, `failures` integer NOT NULL DEFAULT (0));
-- Create index "webhookendpoint_organization_id" to table: "webhook_endpoints"
CREATE INDEX `webhookendpoint_organization_id` ON `webhook_endpoints` (`organization_id`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
