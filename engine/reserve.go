package engine

import (
	"context"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/shopspring/decimal"
)

// Agent runs as states of one machine. A run's STARTED event is decided
// like a single event of the run's expected cost (its burn as if it
// SUCCEEDED), except that what the grants cover is held instead of burned:
//
//	covered                      ALLOWED, the expected cost held
//	short, SOFT or OVERAGE rule  ALLOWED, what is left held; the rest is overage at settlement
//	short, BORROW within limit   ALLOWED, what is left held; the rest is borrowed at settlement
//	short, DEGRADED, allowed     DEGRADED, what is left held; the rest is waived at settlement
//	short, AUTO_TOP_UP           buy TopUps packs, then decide again
//	short otherwise              DENIED INSUFFICIENT_CREDITS, nothing held
//
// The expected cost counts against the budgets of the pool and the pools
// above it (see CheckBudgets): a hard budget the run would exceed denies it
// (BUDGET_EXCEEDED) before anything is held.
//
// The run's terminal event is decided by SettleRun.

// Reservation is what a run's STARTED event holds: the credits the run is
// expected to cost taken from the grants in draw order, so that concurrent
// runs cannot spend them.
type Reservation struct {
	Decision   credit.Decision // ALLOWED, DEGRADED, or DENIED (nothing held)
	Expected   decimal.Decimal // what the run would cost on success; what budgets count
	Draws      []Draw          // the held credits, by grant
	Held       decimal.Decimal // sum of Draws
	TopUps     int             // AUTO_TOP_UP: packs to buy before deciding again
	Reason     string
	ReasonCode credit.Code
}

// Denied reports whether the run may not start.
func (r Reservation) Denied() bool { return r.Decision == credit.DecisionDenied }

// Reserve decides the hold of a run starting with ev, drawing on tiers as
// DecideUsageTiers does; a shortfall is decided by the plan's overage mode
// exactly as for a single event of the expected cost.
func Reserve(ctx context.Context, v Versions, org Org, ev Event, tiers [][]Grant, now time.Time) (Reservation, error) {
	if d, ok := notEntitled(v.Terms, ev); ok {
		return Reservation{Decision: d.Decision, Expected: decimal.Zero, Held: decimal.Zero, ReasonCode: d.ReasonCode, Reason: d.Reason}, nil
	}
	w, err := WeightOf(ctx, v.Register, ev, org, now)
	if err != nil {
		return Reservation{}, err
	}
	success := ev
	success.Status, success.Completion = credit.StatusSucceeded, decimal.NewFromInt(1)
	expected, err := BurnOf(ctx, v.Burn, w, success, org, now)
	if err != nil {
		return Reservation{}, err
	}
	r := Reservation{Decision: credit.DecisionAllowed, Expected: expected, Held: decimal.Zero}
	if expected.IsZero() {
		return r, nil
	}
	ordered, err := orderTiers(ctx, v.DrawOrder, tiers, now)
	if err != nil {
		return Reservation{}, err
	}
	draws, short := Draws(ordered, expected)
	if short.IsPositive() {
		d, err := shortfall(ctx, v, org, success, UsageDecision{Decision: credit.DecisionAllowed, Weight: w, Credits: expected, Requested: expected}, draws, short, now)
		if err != nil {
			return Reservation{}, err
		}
		switch {
		case d.TopUps > 0:
			return Reservation{Decision: credit.DecisionDenied, Expected: expected, Held: decimal.Zero, TopUps: d.TopUps}, nil
		case d.Decision == credit.DecisionDenied:
			return Reservation{Decision: credit.DecisionDenied, Expected: expected, Held: decimal.Zero,
				Reason: "cannot reserve the run: " + d.Reason, ReasonCode: d.ReasonCode}, nil
		}
		r.Decision, r.Reason = d.Decision, d.Reason
	}
	r.Draws, r.Held = draws, expected.Sub(short)
	return r, nil
}

// SettleRun decides a run's terminal event. held is what the run's hold
// took from each grant (empty when nothing is held: the hold timed out, or
// the run held nothing). The burn is taken from the held credits first,
// whatever their grants' expiry since (a hold carries across a period
// boundary), then from the usable grants of tiers, which must not count the
// held credits. The rest is decided by the plan's overage mode; when that
// denies, the run is still settled: the work was approved and done, so the
// decision stays ALLOWED (DEGRADED for a run started degraded), everything
// usable is drawn and what is left is Uncovered, recorded (reasonCode
// UNCOVERED), never waived silently. Under AUTO_TOP_UP the decision may ask
// for TopUps first; the caller buys them and decides again, or, when it
// cannot, calls Uncover.
//
// What the burn leaves of the hold goes back to its grants (Unburned);
// the part of it on grants that expired while held expires at once
// (Expired: EXPIRE entries), as it would have at the boundary.
//
// A terminal event is never denied for a budget: its run was counted when
// it started; what it costs beyond that is spent anyway (see BudgetDelta).
func SettleRun(ctx context.Context, v Versions, org Org, ev Event, held []Draw, tiers [][]Grant, now time.Time) (UsageDecision, error) {
	d, err := settle(ctx, v, org, ev, held, tiers, now)
	if err == nil {
		d.Expired = expiredHeld(held, d.Draws, tiers, now)
	}
	return d, err
}

// expiredHeld is the part of the held credits the burn did not take whose
// grant has expired at now.
func expiredHeld(held, burn []Draw, tiers [][]Grant, now time.Time) []Draw {
	var out []Draw
	for _, u := range Unburned(held, burn) {
		for _, t := range tiers {
			for _, g := range t {
				if g.ID == u.GrantID && g.ExpiresAt != nil && !g.ExpiresAt.After(now) {
					out = append(out, u)
				}
			}
		}
	}
	return out
}

func settle(ctx context.Context, v Versions, org Org, ev Event, held []Draw, tiers [][]Grant, now time.Time) (UsageDecision, error) {
	d, err := costOf(ctx, v, org, ev, now)
	if err != nil {
		return UsageDecision{}, err
	}
	credits := d.Credits
	if credits.IsZero() {
		return d, nil
	}
	fromHold, short := takeHeld(held, credits)
	if !short.IsPositive() {
		d.Draws = fromHold
		return d, nil
	}
	ordered, err := orderTiers(ctx, v.DrawOrder, tiers, now)
	if err != nil {
		return UsageDecision{}, err
	}
	rest, short := Draws(ordered, short)
	draws := append(fromHold, rest...)
	if !short.IsPositive() {
		d.Draws = draws
		return d, nil
	}
	sd, err := shortfall(ctx, v, org, ev, d, draws, short, now)
	if err != nil {
		return UsageDecision{}, err
	}
	if sd.TopUps > 0 {
		sd.Draws, sd.Uncovered = draws, short // what Uncover settles if no pack can be bought
		return sd, nil
	}
	if sd.Decision != credit.DecisionDenied {
		return sd, nil
	}
	return Uncover(UsageDecision{Weight: d.Weight, Credits: credits, Requested: credits, Draws: draws, Uncovered: short}), nil
}

// Uncover settles a run's terminal event whose cost the balance and the
// overage mode could not cover: d.Draws are taken, d.Uncovered is recorded.
func Uncover(d UsageDecision) UsageDecision {
	return UsageDecision{Decision: credit.DecisionAllowed, Weight: d.Weight, Credits: d.Requested, Requested: d.Requested,
		Draws: d.Draws, Uncovered: d.Uncovered, Expired: d.Expired, ReasonCode: credit.CodeUncovered,
		Reason: "uncovered: " + d.Uncovered.String() + " credits of the run could not be covered by its hold, the balance or the plan's overage mode"}
}

// takeHeld burns up to credits from the held draws, in the order they were
// held. It returns the burn's draws and what the hold did not cover.
func takeHeld(held []Draw, credits decimal.Decimal) ([]Draw, decimal.Decimal) {
	gs := make([]Grant, len(held))
	for i, h := range held {
		gs[i] = Grant{ID: h.GrantID, Remaining: h.Amount}
	}
	return Draws(gs, credits)
}

// Unburned is what each held grant gets back when its run settles: its
// held amount less what the burn took from it.
func Unburned(held, burn []Draw) []Draw {
	took := map[int]decimal.Decimal{}
	for _, b := range burn {
		took[b.GrantID] = took[b.GrantID].Add(b.Amount)
	}
	var out []Draw
	for _, h := range held {
		t := decimal.Min(took[h.GrantID], h.Amount)
		took[h.GrantID] = took[h.GrantID].Sub(t)
		if back := h.Amount.Sub(t); back.IsPositive() {
			out = append(out, Draw{GrantID: h.GrantID, Amount: back})
		}
	}
	return out
}

// BudgetDelta is what a run's terminal event adds to a budget's spend:
// its charge less what its STARTED event counted, when that was counted in
// the budget's current period; its whole charge otherwise (the start was
// counted in a period now closed, or nothing was counted).
func BudgetDelta(charged, counted decimal.Decimal, countedIn, current time.Time) decimal.Decimal {
	if countedIn.Equal(current) {
		return charged.Sub(counted)
	}
	return charged
}
