package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// The KPI rollups (package kpi): the ledger entries and usage events of a
// closed UTC month, summed by organisation (and, for entries, by kind,
// credit type, whether they name a usage event and their sign). A month
// is closed an hour after it ends: entries are immutable and written at
// the time they happen, so its sums never change. A KpiRolledMonth row
// marks a month rolled up (unique: rolled once, whoever asks first).

// KpiRolledMonth marks a month whose rollups exist.
type KpiRolledMonth struct{ ent.Schema }

func (KpiRolledMonth) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (KpiRolledMonth) Fields() []ent.Field {
	return []ent.Field{field.String("month").NotEmpty().Immutable()} // YYYY-MM
}

func (KpiRolledMonth) Indexes() []ent.Index {
	return []ent.Index{index.Fields("month").Unique()}
}

// KpiEntryMonth is one group of a month's ledger entries.
type KpiEntryMonth struct{ ent.Schema }

func (KpiEntryMonth) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.String("month").Immutable(),
		field.String("kind").Immutable(),
		field.String("credit_type").Immutable(),
		field.Bool("event").Immutable(),
		field.Bool("negative").Immutable(),
		Decimal("credits"),
		Decimal("value"),
	}
}

func (KpiEntryMonth) Indexes() []ent.Index {
	return []ent.Index{index.Fields("month", "organization_id")}
}

// KpiUsageMonth is a month of an organisation's usage events that charged
// credits: how many, and the value and cost their register versions put on
// their actions.
type KpiUsageMonth struct{ ent.Schema }

func (KpiUsageMonth) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.String("month").Immutable(),
		field.Int("events").Immutable(),
		Decimal("value"),
		Decimal("cost"),
	}
}

func (KpiUsageMonth) Indexes() []ent.Index {
	return []ent.Index{index.Fields("month", "organization_id")}
}
