package engine

import (
	"context"
	"sort"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// typeRank is the default order of credit types when priority and expiry tie:
// free credits burn before paid ones, short-lived before long-lived.
var typeRank = map[credit.CreditType]int{
	credit.CreditIncentive:    0,
	credit.CreditPromotional:  1,
	credit.CreditRollover:     2,
	credit.CreditSubscription: 3,
	credit.CreditOnDemand:     4,
	credit.CreditService:      5,
}

// OrderGrants returns the grants usable at now in the order they are drawn:
// by the DRAW_ORDER rule (nil: the default order, see the package doc), ties
// broken by creation time then id. The input slice is not modified.
func OrderGrants(ctx context.Context, rule *Rule, grants []Grant, now time.Time) ([]Grant, error) {
	usable := make([]Grant, 0, len(grants))
	for _, g := range grants {
		if g.Usable(now) {
			usable = append(usable, g)
		}
	}
	if rule == nil {
		sort.SliceStable(usable, func(i, j int) bool { return defaultLess(usable[i], usable[j]) })
		return usable, nil
	}
	keys := make(map[int]rules.SortKey, len(usable))
	for _, g := range usable {
		k, err := rule.Program.SortKey(ctx, rules.Vars{Grant: ruleGrant(g), Now: now})
		if err != nil {
			return nil, ruleRuntime("DRAW_ORDER policy "+quote(rule.Name)+" version "+itoa(rule.Version), err)
		}
		keys[g.ID] = k
	}
	sort.SliceStable(usable, func(i, j int) bool {
		if c := rules.CompareKeys(keys[usable[i].ID], keys[usable[j].ID]); c != 0 {
			return c < 0
		}
		return olderFirst(usable[i], usable[j])
	})
	return usable, nil
}

func defaultLess(a, b Grant) bool {
	if a.Priority != b.Priority {
		return a.Priority < b.Priority
	}
	switch {
	case a.ExpiresAt != nil && b.ExpiresAt == nil:
		return true
	case a.ExpiresAt == nil && b.ExpiresAt != nil:
		return false
	case a.ExpiresAt != nil && !a.ExpiresAt.Equal(*b.ExpiresAt):
		return a.ExpiresAt.Before(*b.ExpiresAt)
	}
	if ra, rb := typeRank[a.CreditType], typeRank[b.CreditType]; ra != rb {
		return ra < rb
	}
	return olderFirst(a, b)
}

func olderFirst(a, b Grant) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

func ruleGrant(g Grant) *rules.Grant {
	var exp time.Time // zero: rules show rules.NoExpiry
	if g.ExpiresAt != nil {
		exp = *g.ExpiresAt
	}
	return &rules.Grant{
		ID: itoa(g.ID), CreditType: string(g.CreditType), Priority: int64(g.Priority),
		Amount: g.Amount, Remaining: g.Remaining, UnitPrice: g.UnitPrice,
		EffectiveAt: g.EffectiveAt, ExpiresAt: exp, CreatedAt: g.CreatedAt,
	}
}
