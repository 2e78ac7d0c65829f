-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_grants" table
CREATE TABLE `new_grants` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `organization_id` integer NOT NULL, `credit_type` text NOT NULL, `priority` integer NOT NULL DEFAULT (100), `amount` text NOT NULL, `remaining` text NOT NULL, `unit_price` text NOT NULL, `effective_at` datetime NOT NULL, `expires_at` datetime NULL, `memo` text NULL, `payment` text NOT NULL DEFAULT ('PAID'), `payment_due_at` datetime NULL, `pool_id` integer NOT NULL, CONSTRAINT `grants_pools_grants` FOREIGN KEY (`pool_id`) REFERENCES `pools` (`id`) ON DELETE NO ACTION);
-- Copy rows from old table "grants" to new temporary table "new_grants"
INSERT INTO `new_grants` (`id`, `created_at`, `organization_id`, `credit_type`, `priority`, `amount`, `remaining`, `unit_price`, `effective_at`, `expires_at`, `memo`, `pool_id`) SELECT `id`, `created_at`, `organization_id`, `credit_type`, `priority`, `amount`, `remaining`, `unit_price`, `effective_at`, `expires_at`, `memo`, `pool_id` FROM `grants`;
-- Drop "grants" table after copying rows
DROP TABLE `grants`;
-- Rename temporary table "new_grants" to "grants"
ALTER TABLE `new_grants` RENAME TO `grants`;
-- Create index "grant_pool_id" to table: "grants"
CREATE INDEX `grant_pool_id` ON `grants` (`pool_id`);
-- Create index "grant_organization_id" to table: "grants"
CREATE INDEX `grant_organization_id` ON `grants` (`organization_id`);
-- Create index "grant_payment_payment_due_at" to table: "grants"
CREATE INDEX `grant_payment_payment_due_at` ON `grants` (`payment`, `payment_due_at`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
