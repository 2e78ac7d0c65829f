package engine

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// BurnOf decides how many credits an event costs, from its weight, by the
// BURN policy in effect (rule nil: the default policy, see the package doc).
func BurnOf(ctx context.Context, rule *Rule, weight decimal.Decimal, ev Event, org Org, now time.Time) (decimal.Decimal, error) {
	if rule == nil {
		return DefaultBurn(weight, ev), nil
	}
	v, err := rule.Program.Decimal(ctx, rules.Vars{Event: ruleEvent(ev), Org: ruleOrg(org), Weight: weight, Now: now})
	if err != nil {
		return decimal.Zero, ruleRuntime("BURN policy "+quote(rule.Name)+" version "+itoa(rule.Version), err)
	}
	return v, nil
}

// DefaultBurn is the burn policy used when none is published: full weight x
// quantity on SUCCEEDED, nothing on FAILED or STARTED, pro-rated by
// completion on PARTIAL.
func DefaultBurn(weight decimal.Decimal, ev Event) decimal.Decimal {
	switch ev.Status {
	case credit.StatusSucceeded:
		return weight.Mul(ev.Quantity)
	case credit.StatusPartial:
		return weight.Mul(ev.Quantity).Mul(ev.Completion)
	default:
		return decimal.Zero
	}
}
