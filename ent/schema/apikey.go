package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/credit"
)

// APIKey is a caller's credential: only the SHA-256 of its secret is kept.
// A key has one role and, for ORG_ADMIN and scoped SERVICE keys, one
// organisation. Revoked keys stay (the audit log names them).
type APIKey struct{ ent.Schema }

func (APIKey) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(100).Immutable(),
		field.Enum("role").GoType(credit.Role("")).Immutable(),
		field.Int("organization_id").Optional().Nillable().Immutable(),
		field.String("secret_hash").NotEmpty().Immutable().Sensitive(),
		// hint is the key's first characters, to tell keys apart in lists.
		field.String("hint").Immutable(),
		field.Int("created_by").Optional().Nillable().Immutable(),
		field.Time("last_used_at").Optional().Nillable(),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

func (APIKey) Indexes() []ent.Index {
	return []ent.Index{index.Fields("secret_hash").Unique(), index.Fields("organization_id")}
}
