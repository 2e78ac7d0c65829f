package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Hold is a reservation for an agent run: credits taken out of a pool's
// grants (HOLD entries) when the run starts, so concurrent runs cannot
// overspend, and given back (RELEASE entries) when the run's terminal event
// settles it or when it times out. (organization_id, run_id) is unique: a
// run holds once.
type Hold struct{ ent.Schema }

func (Hold) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Hold) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.Int("pool_id").Immutable(),
		field.String("run_id").NotEmpty().MaxLen(200).Immutable(),
		Decimal("amount"),
		// budgeted: what the run's STARTED event counted against the hard
		// and soft budgets of its pool and the pools above (its expected
		// cost); null on holds made before budgets counted holds (0).
		NullDecimal("budgeted"),
		field.Int("started_event_id").Immutable(),
		field.Time("expires_at").Immutable(),
		// status: OPEN, SETTLED (by the run's terminal event) or RELEASED
		// (timed out).
		field.String("status").Default("OPEN"),
		field.Int("settled_event_id").Optional().Nillable(),
		field.Time("closed_at").Optional().Nillable(),
	}
}

func (Hold) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("organization_id", "run_id").Unique(),
		index.Fields("status", "expires_at"),
		index.Fields("pool_id", "status"),
	}
}
