package engine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/shopspring/decimal"
)

// Draws takes credits from ordered grants, first grant first, splitting
// across as many grants as needed. It returns the draws and the shortfall
// (zero when the grants covered everything).
func Draws(ordered []Grant, credits decimal.Decimal) ([]Draw, decimal.Decimal) {
	left := credits
	var out []Draw
	for _, g := range ordered {
		if !left.IsPositive() {
			break
		}
		take := decimal.Min(left, g.Remaining)
		if !take.IsPositive() {
			continue
		}
		out = append(out, Draw{GrantID: g.ID, Amount: take})
		left = left.Sub(take)
	}
	return out, left
}

// DecideUsage is the whole pure decision for one usage event on one pool:
// weight, burn, draw order, draws. When the usable grants do not cover the
// burn, the plan's overage mode decides (see shortfall).
func DecideUsage(ctx context.Context, v Versions, org Org, ev Event, grants []Grant, now time.Time) (UsageDecision, error) {
	return DecideUsageTiers(ctx, v, org, ev, [][]Grant{grants}, now)
}

// DecideUsageTiers is DecideUsage for a pool and the pools it falls through
// to: tiers[0] are the grants of the event's pool, tiers[1] its parent's,
// and so on. A tier is drawn to the end before the next one.
func DecideUsageTiers(ctx context.Context, v Versions, org Org, ev Event, tiers [][]Grant, now time.Time) (UsageDecision, error) {
	if d, ok := notEntitled(v.Terms, ev); ok {
		return d, nil
	}
	d, err := costOf(ctx, v, org, ev, now)
	if err != nil {
		return UsageDecision{}, err
	}
	credits := d.Credits
	if credits.IsZero() {
		return d, nil
	}
	ordered, err := orderTiers(ctx, v.DrawOrder, tiers, now)
	if err != nil {
		return UsageDecision{}, err
	}
	draws, short := Draws(ordered, credits)
	if short.IsPositive() {
		return shortfall(ctx, v, org, ev, d, draws, short, now)
	}
	d.Draws = draws
	return d, nil
}

// costOf is an allowed decision for what ev costs: its weight under the
// register in effect and its credits under the burn rule, nothing drawn.
// notEntitled is the denial of an action the plan does not entitle.
func notEntitled(t *PlanTerms, ev Event) (UsageDecision, bool) {
	if t == nil || t.Entitled == nil || slices.Contains(t.Entitled, ev.Action) {
		return UsageDecision{}, false
	}
	return UsageDecision{Decision: credit.DecisionDenied, Weight: decimal.Zero, Credits: decimal.Zero, Requested: decimal.Zero,
		ReasonCode: credit.CodeNotEntitled, Reason: fmt.Sprintf("the plan does not include the action %q", ev.Action)}, true
}

func costOf(ctx context.Context, v Versions, org Org, ev Event, now time.Time) (UsageDecision, error) {
	w, err := WeightOf(ctx, v.Register, ev, org, now)
	if err != nil {
		return UsageDecision{}, err
	}
	credits, err := BurnOf(ctx, v.Burn, w, ev, org, now)
	if err != nil {
		return UsageDecision{}, err
	}
	return UsageDecision{Decision: credit.DecisionAllowed, Weight: w, Credits: credits, Requested: credits}, nil
}

// orderTiers orders each tier by the draw order and puts them end to end.
func orderTiers(ctx context.Context, rule *Rule, tiers [][]Grant, now time.Time) ([]Grant, error) {
	var out []Grant
	for _, t := range tiers {
		o, err := OrderGrants(ctx, rule, t, now)
		if err != nil {
			return nil, err
		}
		out = append(out, o...)
	}
	return out, nil
}

// Apply subtracts the draws from the grants (in place) so that the next
// decision in the same batch sees the new balances.
func Apply(grants []Grant, draws []Draw) {
	for _, dr := range draws {
		for i := range grants {
			if grants[i].ID == dr.GrantID {
				grants[i].Remaining = grants[i].Remaining.Sub(dr.Amount)
				break
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func quote(s string) string { return strconv.Quote(s) }
