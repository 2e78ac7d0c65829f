-- Create index "ledgerentry_organization_id_id" to table: "ledger_entries"
CREATE INDEX `ledgerentry_organization_id_id` ON `ledger_entries` (`organization_id`, `id`);
-- Create index "usageevent_organization_id_id" to table: "usage_events"
CREATE INDEX `usageevent_organization_id_id` ON `usage_events` (`organization_id`, `id`);
