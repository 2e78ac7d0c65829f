package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/credit"
)

// AddOn is a recurring pack a vendor sells on top of a plan: credits of
// one type each billing period for a fee, with their own expiry (nil:
// with the period). Add-ons never change once created.
type AddOn struct{ ent.Schema }

func (AddOn) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (AddOn) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(100).Immutable(),
		Decimal("credits"),
		Decimal("fee"),
		field.String("currency").Default("USD").Immutable(),
		field.Enum("credit_type").GoType(credit.CreditType("")).Immutable(),
		field.Int("expiry_days").Optional().Nillable().Immutable(),
	}
}

func (AddOn) Indexes() []ent.Index {
	return []ent.Index{index.Fields("name").Unique()}
}

// SubscriptionAddOn is an add-on attached to a subscription from added_at
// until removed_at: each period it is attached at the start of grants its
// credits and bills its fee; attaching and removing mid-period prorate.
type SubscriptionAddOn struct{ ent.Schema }

func (SubscriptionAddOn) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (SubscriptionAddOn) Fields() []ent.Field {
	return []ent.Field{
		field.Int("subscription_id").Immutable(),
		field.Int("organization_id").Immutable(),
		field.Int("add_on_id").Immutable(),
		field.Time("added_at").Immutable(),
		field.Time("removed_at").Optional().Nillable(),
		field.String("actor").Optional().Immutable(),
	}
}

func (SubscriptionAddOn) Indexes() []ent.Index {
	return []ent.Index{index.Fields("subscription_id", "add_on_id")}
}
