-- Create "api_keys" table
CREATE TABLE `api_keys` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `name` text NOT NULL, `role` text NOT NULL, `organization_id` integer NULL, `secret_hash` text NOT NULL, `hint` text NOT NULL, `created_by` integer NULL, `last_used_at` datetime NULL, `revoked_at` datetime NULL);
-- Create index "apikey_secret_hash" to table: "api_keys"
CREATE UNIQUE INDEX `apikey_secret_hash` ON `api_keys` (`secret_hash`);
-- Create index "apikey_organization_id" to table: "api_keys"
CREATE INDEX `apikey_organization_id` ON `api_keys` (`organization_id`);
-- Create "audit_entries" table
CREATE TABLE `audit_entries` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `actor_key_id` integer NULL, `actor` text NOT NULL, `organization_id` integer NULL, `action` text NOT NULL, `object_type` text NOT NULL, `object_id` text NOT NULL, `before` json NULL, `after` json NULL, `request_id` text NULL);
-- Create index "auditentry_organization_id_id" to table: "audit_entries"
CREATE INDEX `auditentry_organization_id_id` ON `audit_entries` (`organization_id`, `id`);
