-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_weights" table
CREATE TABLE `new_weights` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `action` text NOT NULL, `credits` text NOT NULL, `expression` text NULL, `value_per_action` text NULL, `cost_per_action` text NULL, `degraded_allowed` bool NOT NULL DEFAULT (false), `register_id` integer NOT NULL, CONSTRAINT `weights_weight_registers_weights` FOREIGN KEY (`register_id`) REFERENCES `weight_registers` (`id`) ON DELETE NO ACTION);
-- Copy rows from old table "weights" to new temporary table "new_weights"
INSERT INTO `new_weights` (`id`, `action`, `credits`, `expression`, `value_per_action`, `cost_per_action`, `register_id`) SELECT `id`, `action`, `credits`, `expression`, `value_per_action`, `cost_per_action`, `register_id` FROM `weights`;
-- Drop "weights" table after copying rows
DROP TABLE `weights`;
-- Rename temporary table "new_weights" to "weights"
ALTER TABLE `new_weights` RENAME TO `weights`;
-- Create index "weight_register_id_action" to table: "weights"
CREATE UNIQUE INDEX `weight_register_id_action` ON `weights` (`register_id`, `action`);
-- Add column "auto_top_up_cap" to table: "plans"
ALTER TABLE `plans` ADD COLUMN `auto_top_up_cap` integer NULL;
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
