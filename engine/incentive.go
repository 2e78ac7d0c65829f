package engine

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/rules"
)

// IncentiveOf evaluates the INCENTIVE policy for an event: the credits it
// grants (0: none). trigger is "usage" for a usage event, "behavior" for a
// named behaviour (whose name is the event's action). Caps and expiry are
// the caller's (plan terms).
func IncentiveOf(ctx context.Context, rule *Rule, ev Event, org Org, trigger string, now time.Time) (decimal.Decimal, error) {
	if rule == nil {
		return decimal.Zero, nil
	}
	v, err := rule.Program.Decimal(ctx, rules.Vars{Event: ruleEvent(ev), Org: ruleOrg(org), Now: now, Trigger: trigger})
	if err != nil {
		return decimal.Zero, ruleRuntime("INCENTIVE policy "+quote(rule.Name)+" version "+itoa(rule.Version), err)
	}
	return v, nil
}
