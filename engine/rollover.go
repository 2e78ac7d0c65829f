package engine

import (
	"sort"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/shopspring/decimal"
)

// GrantAmount is an amount taken from one grant.
type GrantAmount struct {
	GrantID int
	Amount  decimal.Decimal
}

// PeriodClose is what closing a subscription period does to the pool's
// grants at the boundary: which grants expire (EXPIRE entries), which roll
// into the next period (ROLLOVER_OUT entries) and how many credits the new
// ROLLOVER grant holds (its ROLLOVER_IN entry).
type PeriodClose struct {
	Expire  []GrantAmount
	RollOut []GrantAmount
	Rolled  decimal.Decimal
	Expired decimal.Decimal
}

// ClosePeriod decides the end of a period at boundary for the grants of a
// subscription's pool. Every grant with credits left whose expiry is at or
// before the boundary ends now: included credits (SUBSCRIPTION) and earlier
// rollovers (ROLLOVER) roll over by the plan's mode, everything else expires.
//
//	NONE       nothing rolls.
//	CAPPED     SUBSCRIPTION and ROLLOVER credits roll, at most cap in total.
//	ONE_TIME   SUBSCRIPTION credits roll; ROLLOVER credits (already rolled
//	           once) expire.
//	UNLIMITED  SUBSCRIPTION and ROLLOVER credits all roll.
//
// Rolled credits are taken from the grants in the default draw order.
// Invariant: for every ending grant, its expire and roll-out amounts sum to
// its remaining credits; Rolled is the sum of RollOut.
func ClosePeriod(mode credit.RolloverMode, cap decimal.NullDecimal, grants []Grant, boundary time.Time) PeriodClose {
	var ending []Grant
	for _, g := range grants {
		if g.ExpiresAt != nil && !g.ExpiresAt.After(boundary) && g.Remaining.IsPositive() {
			ending = append(ending, g)
		}
	}
	sort.SliceStable(ending, func(i, j int) bool { return defaultLess(ending[i], ending[j]) })
	rollable := func(g Grant) bool {
		switch mode {
		case credit.RolloverCapped, credit.RolloverUnlimited:
			return g.CreditType == credit.CreditSubscription || g.CreditType == credit.CreditRollover
		case credit.RolloverOneTime:
			return g.CreditType == credit.CreditSubscription
		}
		return false
	}
	limit := decimal.Decimal{}
	limited := mode == credit.RolloverCapped
	if limited && cap.Valid {
		limit = cap.Decimal
	}
	out := PeriodClose{Rolled: decimal.Zero, Expired: decimal.Zero}
	for _, g := range ending {
		roll := decimal.Zero
		if rollable(g) {
			roll = g.Remaining
			if limited {
				roll = decimal.Min(roll, limit.Sub(out.Rolled))
				if roll.IsNegative() {
					roll = decimal.Zero
				}
			}
		}
		if roll.IsPositive() {
			out.RollOut = append(out.RollOut, GrantAmount{g.ID, roll})
			out.Rolled = out.Rolled.Add(roll)
		}
		if rest := g.Remaining.Sub(roll); rest.IsPositive() {
			out.Expire = append(out.Expire, GrantAmount{g.ID, rest})
			out.Expired = out.Expired.Add(rest)
		}
	}
	return out
}
