package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Organization is a customer of the vendor: it owns pools, grants and usage.
type Organization struct{ ent.Schema }

func (Organization) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Organization) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(200),
		field.String("segment").Optional().MaxLen(100),
		// register_name names the weight register whose versions price this
		// organisation's usage.
		field.String("register_name").Default("default").NotEmpty().MaxLen(100),
		// The buyer's overage cap per billing period: credits, money, or
		// both (the lower binds); past it overage is DENIED OVERAGE_CAP.
		MutableNullDecimal("overage_cap_credits"),
		MutableNullDecimal("overage_cap_amount"),
	}
}

func (Organization) Edges() []ent.Edge {
	return []ent.Edge{edge.To("pools", Pool.Type)}
}
