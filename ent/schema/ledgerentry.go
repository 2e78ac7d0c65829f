package schema

import (
	"context"
	"errors"

	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/credit"
)

// LedgerEntry is one immutable movement of credits on a pool (and usually one
// grant). amount is signed: positive adds credits, negative removes them.
// Corrections are new entries; rows are never updated or deleted (a hook
// refuses it). Each entry names its cause (the usage event) and the register
// and policy versions that decided it.
type LedgerEntry struct{ ent.Schema }

func (LedgerEntry) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (LedgerEntry) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.Int("pool_id").Immutable(),
		field.Int("grant_id").Optional().Nillable().Immutable(),
		field.Enum("kind").GoType(credit.EntryKind("")).Immutable(),
		Decimal("amount"),
		field.Int("usage_event_id").Optional().Nillable().Immutable(),
		// The versions that decided the entry; nil means the built-in default.
		field.Int("register_id").Optional().Nillable().Immutable(),
		field.Int("register_version").Optional().Nillable().Immutable(),
		field.Int("burn_policy_id").Optional().Nillable().Immutable(),
		field.Int("burn_policy_version").Optional().Nillable().Immutable(),
		field.Int("draw_policy_id").Optional().Nillable().Immutable(),
		field.Int("draw_policy_version").Optional().Nillable().Immutable(),
		field.String("memo").Optional().MaxLen(500).Immutable(),
	}
}

func (LedgerEntry) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("pool", Pool.Type).Field("pool_id").Unique().Required().Immutable(),
		edge.To("grant", Grant.Type).Field("grant_id").Unique().Immutable(),
		edge.To("usage_event", UsageEvent.Type).Field("usage_event_id").Unique().Immutable(),
	}
}

func (LedgerEntry) Indexes() []ent.Index {
	// (organization_id, id): an organisation's ledger in id order, as
	// exports read it.
	return []ent.Index{index.Fields("pool_id", "id"), index.Fields("grant_id"), index.Fields("usage_event_id"), index.Fields("organization_id", "id"),
		index.Fields("created_at"), // KPI ranges (package kpi)
	}
}

// ErrImmutable is returned when code tries to change or delete a ledger entry.
var ErrImmutable = errors.New("ledger entries are immutable: write a correcting entry instead")

// Hooks refuse every update and delete of a ledger entry.
func (LedgerEntry) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
				if !m.Op().Is(ent.OpCreate) {
					return nil, ErrImmutable
				}
				return next.Mutate(ctx, m)
			})
		},
	}
}
