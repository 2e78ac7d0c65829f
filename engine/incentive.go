package engine

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// EarnsIncentive reports whether a usage event's decision may earn usage
// incentives: only events that charge do. A run's STARTED event never
// earns (its terminal event does, once); a DENIED event never does, nor a
// run settled beyond what paid for it (UNCOVERED); a
// FAILED event earns only when the INCENTIVE rule reads event.status, so
// that paying for failures is the rule's explicit choice and a buyer
// cannot farm credits by reporting failed work.
func EarnsIncentive(rule *Rule, ev Event, d UsageDecision) bool {
	switch {
	case rule == nil, ev.Status == credit.StatusStarted, d.Decision == credit.DecisionDenied, d.Uncovered.IsPositive():
		return false
	case ev.Status == credit.StatusFailed:
		return rule.Program.ReadsStatus()
	}
	return d.Credits.IsPositive()
}

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
