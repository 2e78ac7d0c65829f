package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/engine"
)

// Pool holds grants; usage draws on a pool. Pools form a tree inside one
// organisation: PERSONAL -> TEAM -> ACCOUNT.
type Pool struct{ ent.Schema }

func (Pool) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Pool) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.Enum("kind").GoType(engine.PoolKind("")).Immutable(),
		field.String("name").NotEmpty().MaxLen(200),
		field.Int("parent_id").Optional().Nillable().Immutable(),
	}
}

func (Pool) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("organization", Organization.Type).Ref("pools").Field("organization_id").Unique().Required().Immutable(),
		edge.To("children", Pool.Type).From("parent").Field("parent_id").Unique().Immutable(),
		edge.To("grants", Grant.Type),
	}
}

func (Pool) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id")}
}
