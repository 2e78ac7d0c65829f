-- Create "grants" table
CREATE TABLE `grants` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `credit_type` text NOT NULL, `priority` integer NOT NULL DEFAULT (100), `amount` text NOT NULL, `remaining` text NOT NULL, `unit_price` text NOT NULL, `effective_at` datetime NOT NULL, `expires_at` datetime NULL, `memo` text NULL, `pool_id` integer NOT NULL, CONSTRAINT `grants_pools_grants` FOREIGN KEY (`pool_id`) REFERENCES `pools` (`id`) ON DELETE NO ACTION);
-- Create index "grant_pool_id" to table: "grants"
CREATE INDEX `grant_pool_id` ON `grants` (`pool_id`);
-- Create index "grant_organization_id" to table: "grants"
CREATE INDEX `grant_organization_id` ON `grants` (`organization_id`);
-- Create "ledger_entries" table
CREATE TABLE `ledger_entries` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `kind` text NOT NULL, `amount` text NOT NULL, `register_id` integer NULL, `register_version` integer NULL, `burn_policy_id` integer NULL, `burn_policy_version` integer NULL, `draw_policy_id` integer NULL, `draw_policy_version` integer NULL, `memo` text NULL, `pool_id` integer NOT NULL, `grant_id` integer NULL, `usage_event_id` integer NULL, CONSTRAINT `ledger_entries_pools_pool` FOREIGN KEY (`pool_id`) REFERENCES `pools` (`id`) ON DELETE NO ACTION, CONSTRAINT `ledger_entries_grants_grant` FOREIGN KEY (`grant_id`) REFERENCES `grants` (`id`) ON DELETE SET NULL, CONSTRAINT `ledger_entries_usage_events_usage_event` FOREIGN KEY (`usage_event_id`) REFERENCES `usage_events` (`id`) ON DELETE SET NULL);
-- Create index "ledgerentry_pool_id_id" to table: "ledger_entries"
CREATE INDEX `ledgerentry_pool_id_id` ON `ledger_entries` (`pool_id`, `id`);
-- Create index "ledgerentry_grant_id" to table: "ledger_entries"
CREATE INDEX `ledgerentry_grant_id` ON `ledger_entries` (`grant_id`);
-- Create index "ledgerentry_usage_event_id" to table: "ledger_entries"
CREATE INDEX `ledgerentry_usage_event_id` ON `ledger_entries` (`usage_event_id`);
-- Create "organizations" table
CREATE TABLE `organizations` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `name` text NOT NULL, `segment` text NULL, `register_name` text NOT NULL DEFAULT ('default'));
-- Create "policy_versions" table
CREATE TABLE `policy_versions` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `name` text NOT NULL, `kind` text NOT NULL, `expression` text NOT NULL, `version` integer NOT NULL, `status` text NOT NULL, `effective_from` datetime NULL, `published_at` datetime NULL);
-- Create index "policyversion_name_version" to table: "policy_versions"
CREATE UNIQUE INDEX `policyversion_name_version` ON `policy_versions` (`name`, `version`);
-- Create index "policyversion_kind_status" to table: "policy_versions"
CREATE INDEX `policyversion_kind_status` ON `policy_versions` (`kind`, `status`);
-- Create "pools" table
CREATE TABLE `pools` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `kind` text NOT NULL, `name` text NOT NULL, `organization_id` integer NOT NULL, `parent_id` integer NULL, CONSTRAINT `pools_organizations_pools` FOREIGN KEY (`organization_id`) REFERENCES `organizations` (`id`) ON DELETE NO ACTION, CONSTRAINT `pools_pools_children` FOREIGN KEY (`parent_id`) REFERENCES `pools` (`id`) ON DELETE SET NULL);
-- Create index "pool_organization_id" to table: "pools"
CREATE INDEX `pool_organization_id` ON `pools` (`organization_id`);
-- Create "usage_events" table
CREATE TABLE `usage_events` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `pool_id` integer NOT NULL, `idempotency_key` text NOT NULL, `payload_hash` text NOT NULL, `action` text NOT NULL, `status` text NOT NULL, `quantity` text NOT NULL, `completion` text NOT NULL, `attempt` integer NOT NULL DEFAULT (1), `run_id` text NULL, `properties` json NULL, `occurred_at` datetime NOT NULL, `credits` text NOT NULL, `overage` text NOT NULL, `decision` text NOT NULL, `reason` text NULL, `reason_code` text NULL, `register_id` integer NULL, `register_version` integer NULL, `burn_policy_id` integer NULL, `burn_policy_version` integer NULL, `draw_policy_id` integer NULL, `draw_policy_version` integer NULL);
-- Create index "usageevent_organization_id_idempotency_key" to table: "usage_events"
CREATE UNIQUE INDEX `usageevent_organization_id_idempotency_key` ON `usage_events` (`organization_id`, `idempotency_key`);
-- Create index "usageevent_pool_id" to table: "usage_events"
CREATE INDEX `usageevent_pool_id` ON `usage_events` (`pool_id`);
-- Create "weights" table
CREATE TABLE `weights` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `action` text NOT NULL, `credits` text NOT NULL, `expression` text NULL, `value_per_action` text NULL, `cost_per_action` text NULL, `register_id` integer NOT NULL, CONSTRAINT `weights_weight_registers_weights` FOREIGN KEY (`register_id`) REFERENCES `weight_registers` (`id`) ON DELETE NO ACTION);
-- Create index "weight_register_id_action" to table: "weights"
CREATE UNIQUE INDEX `weight_register_id_action` ON `weights` (`register_id`, `action`);
-- Create "weight_registers" table
CREATE TABLE `weight_registers` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `name` text NOT NULL, `version` integer NOT NULL, `status` text NOT NULL, `effective_from` datetime NULL, `published_at` datetime NULL);
-- Create index "weightregister_name_version" to table: "weight_registers"
CREATE UNIQUE INDEX `weightregister_name_version` ON `weight_registers` (`name`, `version`);
