package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/credit"
)

// UsageEvent is one recorded action of an organisation, with the engine's
// decision about it. (organization_id, idempotency_key) is unique: a key has
// at most one effect, and payload_hash tells a replay from a conflicting reuse.
type UsageEvent struct{ ent.Schema }

func (UsageEvent) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (UsageEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.Int("pool_id").Immutable(),
		field.String("idempotency_key").NotEmpty().MaxLen(200).Immutable(),
		field.String("payload_hash").Immutable(),
		field.String("action").NotEmpty().MaxLen(200).Immutable(),
		field.Enum("status").GoType(credit.UsageStatus("")).Immutable(),
		Decimal("quantity"),
		Decimal("completion"),
		field.Int("attempt").Default(1).Immutable(),
		field.String("run_id").Optional().MaxLen(200).Immutable(),
		field.JSON("properties", map[string]any{}).Optional().Immutable(),
		field.Time("occurred_at").Immutable(),
		Decimal("credits"),
		Decimal("overage"),
		field.Enum("decision").GoType(credit.Decision("")).Immutable(),
		field.String("reason").Optional().Immutable(),
		field.String("reason_code").Optional().Immutable(),
		field.Int("register_id").Optional().Nillable().Immutable(),
		field.Int("register_version").Optional().Nillable().Immutable(),
		field.Int("burn_policy_id").Optional().Nillable().Immutable(),
		field.Int("burn_policy_version").Optional().Nillable().Immutable(),
		field.Int("draw_policy_id").Optional().Nillable().Immutable(),
		field.Int("draw_policy_version").Optional().Nillable().Immutable(),
	}
}

func (UsageEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("organization_id", "idempotency_key").Unique(),
		index.Fields("pool_id"),
		index.Fields("organization_id", "id"), // usageEvents pages and exports
		index.Fields("created_at"),            // KPI ranges (package kpi)
	}
}
