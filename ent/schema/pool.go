package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/credit"
)

// Pool holds grants; usage draws on a pool. Pools form a tree inside one
// organisation: PERSONAL -> TEAM -> ACCOUNT.
type Pool struct{ ent.Schema }

func (Pool) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Pool) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.Enum("kind").GoType(credit.PoolKind("")).Immutable(),
		field.String("name").NotEmpty().MaxLen(200),
		field.Int("parent_id").Optional().Nillable().Immutable(),
		// fall_through: usage on this pool may draw on its parents' grants
		// once its own are spent.
		field.Bool("fall_through").Default(true).Immutable(),
		// A budget caps what the pool (with the pools under it) may burn in a
		// calendar period (UTC): a hard one stops its spending even when its
		// parents hold credits; a soft one raises an alert once a period.
		MutableNullDecimal("budget_amount"),
		field.Enum("budget_period").GoType(credit.Period("")).Optional().Nillable(),
		field.Bool("budget_hard").Default(false),
	}
}

func (Pool) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("organization", Organization.Type).Ref("pools").Field("organization_id").Unique().Required().Immutable(),
		edge.To("children", Pool.Type).From("parent").Field("parent_id").Unique().Immutable(),
		edge.To("grants", Grant.Type),
	}
}

// PoolSpend is what a budgeted pool (with the pools under it) burned in one
// budget period.
type PoolSpend struct{ ent.Schema }

func (PoolSpend) Fields() []ent.Field {
	return []ent.Field{
		field.Int("pool_id").Immutable(),
		field.Time("period_start").Immutable(),
		MutableDecimal("spent"),
	}
}

func (PoolSpend) Indexes() []ent.Index {
	return []ent.Index{index.Fields("pool_id", "period_start").Unique()}
}

// Alert is a notice for an organisation's admins, raised once per pool,
// kind and period (e.g. a soft budget exceeded).
type Alert struct{ ent.Schema }

func (Alert) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Alert) Fields() []ent.Field {
	return []ent.Field{
		// organization_id and pool_id are null only for an alert about a
		// vendor-wide webhook endpoint (WEBHOOK_DISABLED).
		field.Int("organization_id").Optional().Nillable().Immutable(),
		field.Int("pool_id").Optional().Nillable().Immutable(),
		field.String("kind").Immutable(), // a credit.AlertKind
		// condition tells firings of one kind apart: "" for the alerts the
		// usage path raises, "rule:ID" for an alert rule, "policy:NAME" for
		// an ALERT policy, "endpoint:ID" for a disabled webhook endpoint.
		field.String("condition").Default("").Immutable(),
		field.Int("rule_id").Optional().Nillable().Immutable(),
		field.Time("period_start").Immutable(),
		field.String("message").Immutable(),
		field.Int("usage_event_id").Optional().Nillable().Immutable(),
		field.Time("acknowledged_at").Optional().Nillable(),
		field.String("acknowledged_by").Optional().Nillable(),
	}
}

// One firing per pool, kind, condition and period: repeated evaluations,
// period closes and replicas insert it once (ON CONFLICT DO NOTHING).
func (Alert) Indexes() []ent.Index {
	return []ent.Index{index.Fields("pool_id", "kind", "condition", "period_start").Unique(), index.Fields("organization_id", "id")}
}

// AlertRule is a condition an admin watches on a pool, or on every pool of
// an organisation (pool_id null), evaluated by the alert job.
type AlertRule struct{ ent.Schema }

func (AlertRule) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (AlertRule) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.Int("pool_id").Optional().Nillable().Immutable(),
		field.Enum("kind").GoType(credit.AlertKind("")).Immutable(),
		// threshold: credits (BALANCE_BELOW), a share 0..1 (BALANCE_BELOW
		// with share, BUDGET_REACHED), days (EXPIRING_WITHIN,
		// DEPLETION_PROJECTED) or a factor (BURN_RATE_ABOVE).
		NullDecimal("threshold"),
		field.Bool("share").Default(false).Immutable(),
		field.String("name").Optional().MaxLen(200).Immutable(),
		field.Bool("enabled").Default(true),
	}
}

func (AlertRule) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id"), index.Fields("enabled")}
}

func (Pool) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id")}
}
