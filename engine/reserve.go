package engine

import (
	"context"
	"time"

	"github.com/shopspring/decimal"
)

// Reservation is what a run's STARTED event holds: the credits the run is
// expected to cost (its burn as if it SUCCEEDED) taken from the grants in
// draw order, so that concurrent runs cannot spend them.
type Reservation struct {
	Expected decimal.Decimal // what the run would cost on success
	Draws    []Draw          // the held credits, by grant
	Held     decimal.Decimal // sum of Draws
	Denied   bool            // the grants cannot cover the hold (HARD ceiling): the run may not start
	Reason   string
}

// Reserve decides the hold of a run starting with ev, drawing on tiers as
// DecideUsageTiers does. Under a SOFT plan a
// run may start on what is left (the hold is what is available; the rest
// will be overage when the run settles); otherwise a run whose expected
// cost is not covered is denied.
func Reserve(ctx context.Context, v Versions, org Org, ev Event, tiers [][]Grant, now time.Time) (Reservation, error) {
	w, err := WeightOf(ctx, v.Register, ev, org, now)
	if err != nil {
		return Reservation{}, err
	}
	success := ev
	success.Status, success.Completion = StatusSucceeded, decimal.NewFromInt(1)
	expected, err := BurnOf(ctx, v.Burn, w, success, org, now)
	if err != nil {
		return Reservation{}, err
	}
	r := Reservation{Expected: expected, Held: decimal.Zero}
	if expected.IsZero() {
		return r, nil
	}
	ordered, err := orderTiers(ctx, v.DrawOrder, tiers, now)
	if err != nil {
		return Reservation{}, err
	}
	draws, short := Draws(ordered, expected)
	if short.IsPositive() && (v.Terms == nil || v.Terms.OverageMode != OverageSoft) {
		return Reservation{Expected: expected, Held: decimal.Zero, Denied: true,
			Reason: "insufficient credits to reserve the run: " + expected.String() + " needed, " + expected.Sub(short).String() + " available"}, nil
	}
	r.Draws, r.Held = draws, expected.Sub(short)
	return r, nil
}
