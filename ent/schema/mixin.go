// Package schema is the ent schema of the credit ledger: the single source of
// the database tables, the generated client and (through migrations/) the SQL
// migrations of both dialects.
package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
	"github.com/shopspring/decimal"
)

// decimalType stores credits and money exactly: numeric in PostgreSQL, text
// in SQLite (SQLite's numeric affinity would turn values into doubles).
var decimalType = map[string]string{dialect.Postgres: "numeric", dialect.SQLite: "text"}

// Decimal is a required exact decimal column that never changes once written.
func Decimal(name string) ent.Field {
	return field.Other(name, decimal.Decimal{}).SchemaType(decimalType).Immutable()
}

// MutableDecimal is a required exact decimal column that may be updated.
func MutableDecimal(name string) ent.Field {
	return field.Other(name, decimal.Decimal{}).SchemaType(decimalType)
}

// NullDecimal is an optional exact decimal column that never changes.
func NullDecimal(name string) ent.Field {
	return field.Other(name, decimal.NullDecimal{}).SchemaType(decimalType).Optional().Immutable()
}

// CreatedAt is the creation time of a row, set by the engine (never the wall
// clock of the database) so that tests and simulations control time.
type CreatedAt struct{ mixin.Schema }

func (CreatedAt) Fields() []ent.Field {
	return []ent.Field{field.Time("created_at").Immutable().Default(func() time.Time { return time.Now().UTC() })}
}

// MutableNullDecimal is an optional exact decimal column that may be updated.
func MutableNullDecimal(name string) ent.Field {
	return field.Other(name, decimal.NullDecimal{}).SchemaType(decimalType).Optional()
}
