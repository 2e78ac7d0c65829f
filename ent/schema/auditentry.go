package schema

import (
	"context"
	"errors"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditEntry records one administrative change: who (the API key), what
// (an action on an object), before and after, when. Append-only: a hook
// refuses updates and deletes.
type AuditEntry struct{ ent.Schema }

func (AuditEntry) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (AuditEntry) Fields() []ent.Field {
	return []ent.Field{
		field.Int("actor_key_id").Optional().Nillable().Immutable(),
		field.String("actor").Immutable(), // key name, or "system" for in-process callers
		field.Int("organization_id").Optional().Nillable().Immutable(),
		field.String("action").NotEmpty().Immutable(),      // e.g. grantCredits, publishPolicy
		field.String("object_type").NotEmpty().Immutable(), // e.g. Grant, Policy
		field.String("object_id").Immutable(),
		field.JSON("before", map[string]any{}).Optional().Immutable(),
		field.JSON("after", map[string]any{}).Optional().Immutable(),
		field.String("request_id").Optional().Immutable(),
	}
}

func (AuditEntry) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "id")}
}

// ErrAppendOnly is returned when code tries to change or delete an audit entry.
var ErrAppendOnly = errors.New("the audit log is append-only")

// Hooks refuse every update and delete of an audit entry.
func (AuditEntry) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
				if !m.Op().Is(ent.OpCreate) {
					return nil, ErrAppendOnly
				}
				return next.Mutate(ctx, m)
			})
		},
	}
}
