package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/credit"
)

// WeightRegister is one version of a named register: credits per action, with
// the value and cost of each action. A published version never changes.
type WeightRegister struct{ ent.Schema }

func (WeightRegister) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (WeightRegister) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(100).Immutable(),
		field.Int("version").Positive().Immutable(),
		field.Enum("status").GoType(credit.VersionStatus("")),
		field.Time("effective_from").Optional().Nillable(),
		field.Time("published_at").Optional().Nillable(),
	}
}

func (WeightRegister) Edges() []ent.Edge {
	return []ent.Edge{edge.To("weights", Weight.Type)}
}

func (WeightRegister) Indexes() []ent.Index {
	return []ent.Index{index.Fields("name", "version").Unique()}
}

// Weight is one action's price in credits inside a register version.
type Weight struct{ ent.Schema }

func (Weight) Fields() []ent.Field {
	return []ent.Field{
		field.Int("register_id").Immutable(),
		field.String("action").NotEmpty().MaxLen(200).Immutable(),
		Decimal("credits"),
		field.String("expression").Optional().Immutable(),
		NullDecimal("value_per_action"),
		NullDecimal("cost_per_action"),
		// degraded_allowed: the action still runs when a DEGRADED plan is out of credits.
		field.Bool("degraded_allowed").Default(false).Immutable(),
	}
}

func (Weight) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("register", WeightRegister.Type).Ref("weights").Field("register_id").Unique().Required().Immutable(),
	}
}

func (Weight) Indexes() []ent.Index {
	return []ent.Index{index.Fields("register_id", "action").Unique()}
}
