package engine

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// shortfall decides a burn the usable grants do not cover (draws take what
// they can, short is the rest). First an OVERAGE policy may let the event
// through as overage; then the plan's mode. Before both, the buyer's
// overage cap: a shortfall beyond what it still allows is DENIED
// OVERAGE_CAP, whatever the mode (a SOFT plan behaves as HARD past it):
//
//	HARD         DENIED, nothing drawn (also without a subscription).
//	SOFT         ALLOWED: everything usable is drawn, the rest is overage,
//	             billed at the overage price.
//	AUTO_TOP_UP  the caller must buy TopUps packs (within the period's cap)
//	             and decide again; DENIED when the cap does not allow enough.
//	BORROW       ALLOWED when the rest fits what the period may still borrow
//	             from the next allocation (Borrowed); DENIED otherwise.
//	DEGRADED     DEGRADED for actions marked as allowed in degraded mode:
//	             everything usable is drawn and the rest is waived; DENIED
//	             for the others.
func shortfall(ctx context.Context, v Versions, org Org, ev Event, d UsageDecision, draws []Draw, short decimal.Decimal, now time.Time) (UsageDecision, error) {
	available := d.Credits.Sub(short)
	denied := UsageDecision{
		Decision: credit.DecisionDenied, Weight: d.Weight, Credits: decimal.Zero, Requested: d.Credits,
		Reason:     "insufficient credits: " + d.Credits.String() + " needed, " + available.String() + " available",
		ReasonCode: credit.CodeInsufficientCredits,
	}
	if t := v.Terms; t != nil && t.OverageCap != nil && short.GreaterThan(t.OverageLeft) {
		denied.ReasonCode = credit.CodeOverageCap
		denied.Reason += "; the organisation's overage cap allows " + t.OverageLeft.String() + " more credits of overage this period"
		return denied, nil
	}
	if v.Overage != nil {
		through, err := v.Overage.Program.Bool(ctx, rules.Vars{Event: ruleEvent(ev), Org: ruleOrg(org), Weight: d.Weight,
			Now: now, Shortfall: short, Available: available})
		if err != nil {
			return UsageDecision{}, ruleRuntime("OVERAGE policy "+quote(v.Overage.Name)+" version "+itoa(v.Overage.Version), err)
		}
		if through {
			d.Draws, d.Overage = draws, short
			d.Reason = "overage: " + short.String() + " credits let through by the OVERAGE policy"
			return d, nil
		}
	}
	t := v.Terms
	if t == nil {
		return denied, nil
	}
	switch t.OverageMode {
	case credit.OverageSoft:
		d.Draws, d.Overage = draws, short
		d.Reason = "overage: " + short.String() + " credits beyond the balance"
		return d, nil
	case credit.OverageAutoTopUp:
		if n := TopUpsFor(short, t); n > 0 {
			return UsageDecision{Decision: credit.DecisionDenied, Weight: d.Weight, Credits: decimal.Zero, Requested: d.Credits, TopUps: n}, nil
		}
		denied.Reason += "; the period's auto top-ups are used up"
		return denied, nil
	case credit.OverageBorrow:
		if !short.GreaterThan(t.BorrowLeft) {
			d.Draws, d.Borrowed = draws, short
			d.Reason = "borrowed " + short.String() + " credits from the next period"
			return d, nil
		}
		denied.Reason += "; " + t.BorrowLeft.String() + " left to borrow this period"
		return denied, nil
	case credit.OverageDegraded:
		if w := v.Register.Weights[ev.Action]; w != nil && w.DegradedAllowed {
			return UsageDecision{Decision: credit.DecisionDegraded, Weight: d.Weight, Credits: available, Requested: d.Credits, Draws: draws,
				Reason: "degraded mode: " + short.String() + " credits waived"}, nil
		}
		denied.Reason += "; in degraded mode only some actions run"
		return denied, nil
	}
	return denied, nil
}

// MaxTopUpsPerEvent is the most packs an AUTO_TOP_UP plan buys for one
// event, even without a cap: a burn that needs more is denied rather than
// buying (and writing) an unbounded number of packs.
const MaxTopUpsPerEvent = 1000

// TopUpsFor is how many packs an AUTO_TOP_UP plan buys to cover short
// credits: 0 when the plan has no pack size, or when the period's cap or
// MaxTopUpsPerEvent does not allow enough packs.
func TopUpsFor(short decimal.Decimal, t *PlanTerms) int {
	if t == nil || t.OverageMode != credit.OverageAutoTopUp || !t.TopUpCredits.IsPositive() || !short.IsPositive() {
		return 0
	}
	// Exactly (Div rounds to 16 places) and as decimals first: the ratio
	// can be far beyond int's range.
	packs, rest := short.QuoRem(t.TopUpCredits, 0)
	if rest.IsPositive() {
		packs = packs.Add(decimal.NewFromInt(1))
	}
	if packs.GreaterThan(decimal.NewFromInt(MaxTopUpsPerEvent)) {
		return 0
	}
	n := int(packs.IntPart())
	if t.TopUpsLeft >= 0 && n > t.TopUpsLeft {
		return 0
	}
	return n
}

// TopUpAfter reports whether an AUTO_TOP_UP plan buys one pack after a burn
// that left available credits: when they fell below the threshold and the
// period's cap allows.
func TopUpAfter(available decimal.Decimal, t *PlanTerms) bool {
	return t != nil && t.OverageMode == credit.OverageAutoTopUp && t.TopUpCredits.IsPositive() &&
		available.LessThan(t.TopUpThreshold) && t.TopUpsLeft != 0
}
