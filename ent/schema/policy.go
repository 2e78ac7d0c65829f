package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/credit"
)

// PolicyVersion is one version of a named CEL rule of one kind. A published version
// never changes; the rule compiled when it was saved.
type PolicyVersion struct{ ent.Schema }

func (PolicyVersion) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (PolicyVersion) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(100).Immutable(),
		field.Enum("kind").GoType(credit.PolicyKind("")).Immutable(),
		field.Text("expression").Immutable(),
		field.Int("version").Positive().Immutable(),
		field.Enum("status").GoType(credit.VersionStatus("")),
		field.Time("effective_from").Optional().Nillable(),
		field.Time("published_at").Optional().Nillable(),
	}
}

func (PolicyVersion) Indexes() []ent.Index {
	return []ent.Index{index.Fields("name", "version").Unique(), index.Fields("kind", "status")}
}
