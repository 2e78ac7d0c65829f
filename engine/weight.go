package engine

import (
	"context"
	"errors"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// WeightOf returns the credits per unit of ev.Action in the register version
// in effect. A weight with an expression is evaluated over the event (e.g.
// per page or per token count); otherwise it is the fixed credits.
func WeightOf(ctx context.Context, reg *Register, ev Event, org Org, now time.Time) (decimal.Decimal, error) {
	if reg == nil {
		return decimal.Zero, credit.Errorf(credit.CodeNoRegister, "no published weight register is in effect at %s", ev.OccurredAt.Format(time.RFC3339))
	}
	w, ok := reg.Weights[ev.Action]
	if !ok {
		return decimal.Zero, &credit.Error{Code: credit.CodeUnknownAction, Field: "action",
			Message: "action " + quote(ev.Action) + " is not in weight register " + quote(reg.Name) + " version " + itoa(reg.Version)}
	}
	if w.Expression == nil {
		return w.Credits, nil
	}
	v, err := w.Expression.Decimal(ctx, rules.Vars{Event: ruleEvent(ev), Org: ruleOrg(org), Now: now})
	if err != nil {
		return decimal.Zero, ruleRuntime("weight expression of "+quote(ev.Action), err)
	}
	return v, nil
}

func ruleRuntime(what string, err error) *credit.Error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &credit.Error{Code: credit.CodeRuleRuntime, Message: what + ": evaluation cancelled", Cause: err}
	}
	return &credit.Error{Code: credit.CodeRuleRuntime, Message: what + ": " + err.Error(), Cause: err}
}

func ruleEvent(ev Event) *rules.Event {
	return &rules.Event{
		Action: ev.Action, Status: string(ev.Status), RunID: ev.RunID,
		Quantity: ev.Quantity, Completion: ev.Completion, Attempt: int64(ev.Attempt),
		Properties: ev.Properties, OccurredAt: ev.OccurredAt,
	}
}

func ruleOrg(o Org) *rules.Org { return &rules.Org{ID: itoa(o.ID), Segment: o.Segment} }
