package kpi

import (
	"context"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/subscriptionchange"
)

// book is the configuration the figures are placed by: organisations,
// their subscriptions, the plans and the plan changes applied (so that a
// subscription's plan at a past time is the one it was on then).
type book struct {
	orgs    map[int]*ent.Organization
	subs    map[int][]*ent.Subscription // by organisation, oldest first
	plans   map[int]*ent.Plan
	changes map[int][]*ent.SubscriptionChange // applied plan changes by subscription, by effective time
}

func loadBook(ctx context.Context, c *ent.Client) (*book, error) {
	b := &book{orgs: map[int]*ent.Organization{}, subs: map[int][]*ent.Subscription{}, plans: map[int]*ent.Plan{},
		changes: map[int][]*ent.SubscriptionChange{}}
	orgs, err := c.Organization.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		b.orgs[o.ID] = o
	}
	plans, err := c.Plan.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range plans {
		b.plans[p.ID] = p
	}
	subs, err := c.Subscription.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].StartsAt.Before(subs[j].StartsAt) })
	for _, s := range subs {
		b.subs[s.OrganizationID] = append(b.subs[s.OrganizationID], s)
	}
	chs, err := c.SubscriptionChange.Query().Where(subscriptionchange.Status("APPLIED"), subscriptionchange.ToPlanIDNotNil()).All(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(chs, func(i, j int) bool { return chs[i].EffectiveAt.Before(chs[j].EffectiveAt) })
	for _, ch := range chs {
		b.changes[ch.SubscriptionID] = append(b.changes[ch.SubscriptionID], ch)
	}
	return b, nil
}

// subAt is the organisation's subscription in effect at t, if any.
func (b *book) subAt(org int, t time.Time) *ent.Subscription {
	var out *ent.Subscription
	for _, s := range b.subs[org] {
		if !s.StartsAt.After(t) && (s.EndsAt == nil || s.EndsAt.After(t)) {
			out = s
		}
	}
	return out
}

// planAt is the plan sub was on at t: the plan the first change after t
// left, else its plan now.
func (b *book) planAt(sub *ent.Subscription, t time.Time) *ent.Plan {
	for _, ch := range b.changes[sub.ID] {
		if ch.EffectiveAt.After(t) {
			return b.plans[ch.FromPlanID]
		}
	}
	return b.plans[sub.PlanID]
}

// currency is the organisation's: its latest subscription's plan's, else USD.
func (b *book) currency(org int) string {
	if ss := b.subs[org]; len(ss) > 0 {
		if p := b.plans[ss[len(ss)-1].PlanID]; p != nil {
			return p.Currency
		}
	}
	return "USD"
}

// planOf is the plan the organisation is on at t (or was on last before
// it); 0: never subscribed.
func (b *book) planOf(org int, t time.Time) int {
	if s := b.subAt(org, t); s != nil {
		return b.planAt(s, t).ID
	}
	var last *ent.Subscription
	for _, s := range b.subs[org] {
		if !s.StartsAt.After(t) {
			last = s
		}
	}
	if last == nil {
		if ss := b.subs[org]; len(ss) > 0 {
			last = ss[0]
		} else {
			return 0
		}
	}
	return b.planAt(last, t).ID
}

// arrAt is the organisation's committed pool ARR at t: the subscription in
// effect then, at the plan it was on, its platform fee and its commitment
// per term, annualised.
func (b *book) arrAt(org int, t time.Time) decimal.Decimal {
	s := b.subAt(org, t)
	if s == nil {
		return decimal.Zero
	}
	p := b.planAt(s, t)
	if p == nil {
		return decimal.Zero
	}
	perYear := periodsPerYear(p.Period)
	arr := p.PlatformFee.Mul(perYear)
	if s.TermPeriods != nil && *s.TermPeriods > 0 && s.Commitment.IsPositive() {
		arr = arr.Add(s.Commitment.Mul(perYear).DivRound(decimal.NewFromInt(int64(*s.TermPeriods)), 4))
	}
	return arr
}

// periodsPerYear is how many billing periods a year holds.
func periodsPerYear(p credit.Period) decimal.Decimal {
	switch p {
	case credit.PeriodDay:
		return decimal.NewFromInt(365)
	case credit.PeriodQuarter:
		return decimal.NewFromInt(4)
	case credit.PeriodYear:
		return decimal.NewFromInt(1)
	}
	return decimal.NewFromInt(12)
}
