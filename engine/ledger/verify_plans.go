package ledger

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/ent"
)

// subscriptions: what plans, plan changes, terms and add-ons wrote holds
// together (a step of Verify):
//   - every charge a subscription causes (PLATFORM_FEE, PRORATION, ADD_ON,
//     TRUE_UP, TERM_REFUND) names a subscription of its organisation; a
//     TRUE_UP is positive, a TERM_REFUND gives money back for credits
//     (negative amount and credits); an ADD_ON charge names an add-on of
//     its subscription;
//   - at most one PLATFORM_FEE per subscription and period start;
//   - a subscription's history is its own organisation's, and what it has
//     scheduled is what it waits for: a pending plan exactly when a change
//     at PERIOD_END is SCHEDULED, a renewal plan exactly when one at
//     TERM_END is, never two scheduled at one point.
func (v *verifier) subscriptions(ctx context.Context) error {
	subs, err := v.c.Subscription.Query().All(ctx)
	if err != nil {
		return err
	}
	byID := make(map[int]*ent.Subscription, len(subs))
	for _, s := range subs {
		byID[s.ID] = s
	}
	addOnSub := map[int]int{}
	sas, err := v.c.SubscriptionAddOn.Query().All(ctx)
	if err != nil {
		return err
	}
	for _, sa := range sas {
		addOnSub[sa.ID] = sa.SubscriptionID
	}
	chs, err := v.c.Charge.Query().All(ctx)
	if err != nil {
		return err
	}
	fees := map[feeKey]int{}
	for _, ch := range chs {
		switch ch.Kind {
		case "PLATFORM_FEE", "PRORATION", "ADD_ON", "TRUE_UP", "TERM_REFUND":
		default:
			continue
		}
		var sub *ent.Subscription
		if ch.SubscriptionID != nil {
			sub = byID[*ch.SubscriptionID]
		}
		if sub == nil || sub.OrganizationID != ch.OrganizationID {
			v.add("subscription charge", "%s charge %d names no subscription of organisation %d", ch.Kind, ch.ID, ch.OrganizationID)
			continue
		}
		switch {
		case ch.Kind == "TRUE_UP" && !ch.Amount.IsPositive():
			v.add("subscription charge", "TRUE_UP charge %d is %s, not positive", ch.ID, ch.Amount)
		case ch.Kind == "TERM_REFUND" && (!ch.Amount.LessThanOrEqual(decimal.Zero) || !ch.Credits.IsNegative()):
			v.add("subscription charge", "TERM_REFUND charge %d is %s for %s credits: money back is negative, for credits given back", ch.ID, ch.Amount, ch.Credits)
		case ch.Kind == "ADD_ON" && (ch.AddOnID == nil || addOnSub[*ch.AddOnID] != sub.ID):
			v.add("subscription charge", "ADD_ON charge %d names no add-on of subscription %d", ch.ID, sub.ID)
		case ch.Kind == "PLATFORM_FEE" && ch.PeriodStart != nil:
			k := feeKey{sub.ID, ch.PeriodStart.UTC()}
			if fees[k]++; fees[k] == 2 {
				v.add("platform fee", "subscription %d was billed its fee twice for the period from %s", sub.ID, k.start.Format(time.RFC3339))
			}
		}
	}
	changes, err := v.c.SubscriptionChange.Query().All(ctx)
	if err != nil {
		return err
	}
	scheduled := map[int]map[string]int{}
	for _, c := range changes {
		sub := byID[c.SubscriptionID]
		if sub == nil || sub.OrganizationID != c.OrganizationID {
			v.add("subscription history", "change %d names subscription %d, not one of organisation %d", c.ID, c.SubscriptionID, c.OrganizationID)
			continue
		}
		if c.Status == "SCHEDULED" {
			if scheduled[sub.ID] == nil {
				scheduled[sub.ID] = map[string]int{}
			}
			scheduled[sub.ID][c.At]++
		}
	}
	for _, s := range subs {
		n := scheduled[s.ID]
		switch {
		case n[AtPeriodEnd] > 1 || n[AtTermEnd] > 1:
			v.add("subscription history", "subscription %d has two changes scheduled at one point", s.ID)
		case (s.PendingPlanID != nil) != (n[AtPeriodEnd] == 1):
			v.add("subscription history", "subscription %d waits for plan %v, but has %d changes SCHEDULED at PERIOD_END", s.ID, s.PendingPlanID, n[AtPeriodEnd])
		case (s.RenewalPlanID != nil) != (n[AtTermEnd] == 1):
			v.add("subscription history", "subscription %d renews onto plan %v, but has %d changes SCHEDULED at TERM_END", s.ID, s.RenewalPlanID, n[AtTermEnd])
		}
	}
	return nil
}

type feeKey struct {
	sub   int
	start time.Time
}
