-- Create "operations" table
CREATE TABLE `operations` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `key` text NOT NULL, `operation` text NOT NULL, `payload_hash` text NOT NULL, `result` text NOT NULL DEFAULT (''));
-- Create index "operation_organization_id_key" to table: "operations"
CREATE UNIQUE INDEX `operation_organization_id_key` ON `operations` (`organization_id`, `key`);
