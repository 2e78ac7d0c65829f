package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/creditd/creditd/credit"
)

// Plan is a package a pricing team sells: a period, included credits and
// their price, a platform fee, the register that prices usage, and the
// lifecycle rules (overage, rollover, on-demand). Plans never change once
// created: a new deal is a new plan.
type Plan struct{ ent.Schema }

func (Plan) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Plan) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(100).Immutable(),
		field.Enum("period").GoType(credit.Period("")).Immutable(),
		Decimal("included_credits"),
		Decimal("price_per_credit"),
		Decimal("platform_fee"),
		field.String("currency").Default("USD").Immutable(),
		field.String("register_name").NotEmpty().MaxLen(100).Immutable(),
		field.Enum("overage_mode").GoType(credit.OverageMode("")).Immutable(),
		NullDecimal("overage_price"),
		NullDecimal("auto_top_up_threshold"),
		NullDecimal("auto_top_up_credits"),
		// auto_top_up_cap is how many packs may be bought per period; nil: no cap.
		field.Int("auto_top_up_cap").Optional().Nillable().Immutable(),
		NullDecimal("borrow_limit"),
		field.Enum("rollover_mode").GoType(credit.RolloverMode("")).Immutable(),
		NullDecimal("rollover_cap"),
		NullDecimal("on_demand_price"),
		field.Int("on_demand_expiry_days").Optional().Nillable().Immutable(),
		// Incentives (INCENTIVE policies) under this plan: caps per period
		// for the organisation and for each member (pool), and how long
		// incentive credits last. Without a subscription no incentive pays.
		NullDecimal("incentive_cap_per_period"),
		NullDecimal("incentive_cap_per_member"),
		field.Int("incentive_expiry_days").Default(14).Immutable(),
		// Packaging: the family a plan is a tier of (good, better, best:
		// tier 1, 2, 3), what a change away from it does to the current
		// period's included credits, the actions it entitles (nil: all of
		// the register's) and the one-time seed credits of a new
		// subscription.
		field.String("family").Optional().MaxLen(100).Immutable(),
		field.Int("tier").Optional().Nillable().Immutable(),
		field.Enum("change_credits").GoType(credit.ChangeCredits("")).Default(string(credit.ChangeProrate)).Immutable(),
		field.Strings("entitled_actions").Optional().Immutable(),
		NullDecimal("seed_credits"),
		// member_limit is the hard budget per plan period each PERSONAL
		// pool gets when it is created (and moves to on a plan change).
		NullDecimal("member_limit"),
		// Term end: what the unused included credits ending at a term end
		// do (ROLL by the rollover rules, EXPIRE, REFUND in money at
		// term_end_refund_rate per credit).
		field.Enum("term_end_credits").GoType(credit.TermEndCredits("")).Default(string(credit.TermEndRoll)).Immutable(),
		NullDecimal("term_end_refund_rate"),
		// The second dial: graduated volume tiers for on-demand purchases
		// and overage (per billing period; empty: the flat price) and
		// prices per segment.
		field.JSON("on_demand_tiers", []credit.PriceTier{}).Optional().Immutable(),
		field.JSON("overage_tiers", []credit.PriceTier{}).Optional().Immutable(),
		field.JSON("segment_prices", []credit.SegmentPrice{}).Optional().Immutable(),
		// notice_days: how long before it takes effect a register or
		// policy version that changes what the plan's subscribers pay
		// must be published (change management).
		field.Int("notice_days").Default(30).Immutable(),
	}
}

func (Plan) Indexes() []ent.Index {
	return []ent.Index{index.Fields("name").Unique()}
}

// Subscription ties an organisation to a plan from a start time: its periods
// are anchored on the start, in its time zone. Included credits arrive in
// the organisation's default pool.
type Subscription struct{ ent.Schema }

func (Subscription) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Subscription) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		// plan_id changes with changePlan (see SubscriptionChange); a
		// change at period end waits in pending_plan_id until the period
		// close opens the next period under it.
		field.Int("plan_id"),
		field.Int("pending_plan_id").Optional().Nillable(),
		field.Int("pool_id").Immutable(),
		field.Time("starts_at").Immutable(),
		// canceled_at is when cancelSubscription was called; ends_at then
		// says when the subscription ends.
		field.Time("canceled_at").Optional().Nillable(),
		// ends_at is the end of the committed term; nil: open-ended.
		field.Time("ends_at").Optional().Nillable(),
		field.Int("term_periods").Optional().Nillable().Immutable(),
		// auto_renew: the term renews (ends_at nil) or ends (ends_at at
		// the term's end); renewal_plan_id is a plan it renews onto at
		// the next term end (changePlan at TERM_END).
		field.Bool("auto_renew").Default(true),
		field.Int("renewal_plan_id").Optional().Nillable(),
		field.String("time_zone").Default("UTC").Immutable(),
		Decimal("commitment"),
		// register_version pins the plan's register version this contract
		// signed for (grandfathering); nil follows the version in effect.
		field.Int("register_version").Optional().Nillable().Immutable(),
		// grandfathered_until ends the pin: usage that occurs from then on
		// is priced by the version in effect; nil: pinned for good.
		field.Time("grandfathered_until").Optional().Nillable().Immutable(),
		// next_period is the index of the next period to open; periods
		// before it are opened (and the ones before those closed).
		// next_period_at is when it starts; nil once the term has ended.
		field.Int("next_period").Default(0),
		field.Time("next_period_at").Optional().Nillable(),
	}
}

func (Subscription) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id"), index.Fields("next_period_at")}
}

// SubscriptionChange is one entry of a subscription's history: a plan
// change (now, prorated, or scheduled for the period end) or a
// cancellation, with what it posted.
type SubscriptionChange struct{ ent.Schema }

func (SubscriptionChange) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (SubscriptionChange) Fields() []ent.Field {
	return []ent.Field{
		field.Int("subscription_id").Immutable(),
		field.Int("organization_id").Immutable(),
		field.String("kind").Immutable(), // UPGRADE, DOWNGRADE, CHANGE, CANCEL
		field.String("at").Immutable(),   // NOW, PERIOD_END
		field.Int("from_plan_id").Immutable(),
		field.Int("to_plan_id").Optional().Nillable().Immutable(),
		field.Time("effective_at").Immutable(),
		// status: APPLIED, or SCHEDULED until the period close applies it.
		field.String("status"),
		NullDecimal("fraction"), // of the period left, for a prorated change
		MutableDecimal("credits"),
		MutableDecimal("fee"),
		field.String("actor").Optional().Immutable(),
	}
}

func (SubscriptionChange) Indexes() []ent.Index {
	return []ent.Index{index.Fields("subscription_id", "id")}
}

// SubscriptionPeriod records that period n of a subscription was opened
// (and period n-1 closed): unique per (subscription, n), which is what makes
// the period close job safe to run twice, late, or from two servers.
type SubscriptionPeriod struct{ ent.Schema }

func (SubscriptionPeriod) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (SubscriptionPeriod) Fields() []ent.Field {
	return []ent.Field{
		field.Int("subscription_id").Immutable(),
		field.Int("period_index").Immutable(),
		field.Time("starts_at").Immutable(),
		field.Time("ends_at").Immutable(),
		Decimal("expired"),
		Decimal("rolled_over"),
		Decimal("allocated"),
	}
}

func (SubscriptionPeriod) Indexes() []ent.Index {
	return []ent.Index{index.Fields("subscription_id", "period_index").Unique()}
}

// IncentiveAward is one payment of incentive credits: to a member (pool),
// for a usage event or a named behaviour. (pool_id, behavior) is unique for
// behaviours: one behaviour pays once per member.
type IncentiveAward struct{ ent.Schema }

func (IncentiveAward) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (IncentiveAward) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.Int("pool_id").Immutable(),
		// behavior is the behaviour's name, or "usage:<event id>" for usage.
		field.String("behavior").Immutable(),
		field.Int("grant_id").Immutable(),
		field.Int("policy_id").Immutable(),
		field.Int("policy_version").Immutable(),
		Decimal("credits"),
		field.Time("period_start").Immutable(),
	}
}

func (IncentiveAward) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("pool_id", "behavior").Unique(),
		index.Fields("organization_id", "period_start"),
	}
}

// Charge is one money event for an organisation (platform fee, overage,
// on-demand purchase, auto top-up): amount, currency, period and cause. It
// is the basis of invoices elsewhere and of the revenue KPIs.
type Charge struct{ ent.Schema }

func (Charge) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Charge) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.String("kind").NotEmpty().Immutable(), // PLATFORM_FEE, OVERAGE, ON_DEMAND, AUTO_TOP_UP, PRORATION, ADD_ON, TRUE_UP, TERM_REFUND
		Decimal("credits"),
		Decimal("amount"),
		field.String("currency").Immutable(),
		field.Int("subscription_id").Optional().Nillable().Immutable(),
		field.Time("period_start").Optional().Nillable().Immutable(),
		field.Int("usage_event_id").Optional().Nillable().Immutable(),
		field.Int("grant_id").Optional().Nillable().Immutable(),
		field.Int("refund_of").Optional().Nillable().Immutable(), // the charge a negative charge gives money back of
		field.Int("add_on_id").Optional().Nillable().Immutable(), // the subscription add-on (SubscriptionAddOn) it bills
		field.String("memo").Optional().Immutable(),
	}
}

func (Charge) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "id"), index.Fields("grant_id")}
}

// Operation is one credit or money mutation recorded under its idempotency
// key (grantCredits, purchaseCredits, transferCredits): a retry with the
// same key and payload returns the first result and writes nothing, another
// payload is IDEMPOTENCY_CONFLICT. (organization_id, key) is unique; the
// row is claimed before the work is done, so two concurrent attempts do the
// work once.
type Operation struct{ ent.Schema }

func (Operation) Mixin() []ent.Mixin { return []ent.Mixin{CreatedAt{}} }

func (Operation) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.String("key").NotEmpty().MaxLen(200).Immutable(),
		field.String("operation").NotEmpty().Immutable(),
		field.String("payload_hash").Immutable(),
		// result: the ids of what the first attempt made (grants, entries),
		// comma-separated; empty until it is done.
		field.String("result").Default(""),
	}
}

func (Operation) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "key").Unique()}
}

// CatalogGeneration is one row (id 1) counting publishes of registers and
// policies: a publish bumps it in its transaction, a usage batch reads it
// with its pool locks and reloads a catalog snapshot older than it.
type CatalogGeneration struct{ ent.Schema }

func (CatalogGeneration) Fields() []ent.Field {
	return []ent.Field{field.Int64("generation").Default(0)}
}
