-- Create index "ledgerentry_created_at" to table: "ledger_entries"
CREATE INDEX `ledgerentry_created_at` ON `ledger_entries` (`created_at`);
-- Create index "usageevent_created_at" to table: "usage_events"
CREATE INDEX `usageevent_created_at` ON `usage_events` (`created_at`);
-- Create "kpi_entry_months" table
CREATE TABLE `kpi_entry_months` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `organization_id` integer NOT NULL, `month` text NOT NULL, `kind` text NOT NULL, `credit_type` text NOT NULL, `event` bool NOT NULL, `negative` bool NOT NULL, `credits` text NOT NULL, `value` text NOT NULL);
-- Create index "kpientrymonth_month_organization_id" to table: "kpi_entry_months"
CREATE INDEX `kpientrymonth_month_organization_id` ON `kpi_entry_months` (`month`, `organization_id`);
-- Create "kpi_rolled_months" table
CREATE TABLE `kpi_rolled_months` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `created_at` datetime NOT NULL, `month` text NOT NULL);
-- Create index "kpirolledmonth_month" to table: "kpi_rolled_months"
CREATE UNIQUE INDEX `kpirolledmonth_month` ON `kpi_rolled_months` (`month`);
-- Create "kpi_usage_months" table
CREATE TABLE `kpi_usage_months` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `organization_id` integer NOT NULL, `month` text NOT NULL, `events` integer NOT NULL, `value` text NOT NULL, `cost` text NOT NULL);
-- Create index "kpiusagemonth_month_organization_id" to table: "kpi_usage_months"
CREATE INDEX `kpiusagemonth_month_organization_id` ON `kpi_usage_months` (`month`, `organization_id`);
