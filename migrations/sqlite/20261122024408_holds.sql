-- Create "holds" table
CREATE TABLE `holds` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `pool_id` integer NOT NULL, `run_id` text NOT NULL, `amount` text NOT NULL, `started_event_id` integer NOT NULL, `expires_at` datetime NOT NULL, `status` text NOT NULL DEFAULT ('OPEN'), `settled_event_id` integer NULL, `closed_at` datetime NULL);
-- Create index "hold_organization_id_run_id" to table: "holds"
CREATE UNIQUE INDEX `hold_organization_id_run_id` ON `holds` (`organization_id`, `run_id`);
-- Create index "hold_status_expires_at" to table: "holds"
CREATE INDEX `hold_status_expires_at` ON `holds` (`status`, `expires_at`);
-- Create index "hold_pool_id_status" to table: "holds"
CREATE INDEX `hold_pool_id_status` ON `holds` (`pool_id`, `status`);
