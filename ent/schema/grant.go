package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/credit"
)

// Grant is a lot of credits in a pool: its own credit type, priority, price
// paid, effective and expiry time. Only remaining changes after creation,
// and only together with a ledger entry that explains the change; and
// payment, once, from PENDING to PAID or FAILED.
type Grant struct{ ent.Schema }

func (Grant) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Grant) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.Int("pool_id").Immutable(),
		field.Enum("credit_type").GoType(credit.CreditType("")).Immutable(),
		field.Int("priority").Default(100).Immutable(),
		Decimal("amount"),
		MutableDecimal("remaining"),
		Decimal("unit_price"),
		field.Time("effective_at").Immutable(),
		field.Time("expires_at").Optional().Nillable().Immutable(),
		field.String("memo").Optional().MaxLen(500).Immutable(),
		// payment: PENDING grants hold nothing until their payment is
		// confirmed (see credit.Payment); payment_due_at is when an unpaid
		// one is failed by the scheduler.
		field.Enum("payment").GoType(credit.Payment("")).Default(string(credit.PaymentPaid)),
		field.Time("payment_due_at").Optional().Nillable().Immutable(),
	}
}

func (Grant) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("pool", Pool.Type).Ref("grants").Field("pool_id").Unique().Required().Immutable(),
	}
}

func (Grant) Indexes() []ent.Index {
	return []ent.Index{index.Fields("pool_id"), index.Fields("organization_id"), index.Fields("payment", "payment_due_at")}
}
