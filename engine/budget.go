package engine

import (
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/shopspring/decimal"
)

// Budget is a pool's spending cap for the current budget period, with what
// it (with the pools under it) has burned so far in that period.
type Budget struct {
	PoolID      int
	Limit       decimal.Decimal
	Spent       decimal.Decimal
	Hard        bool
	Period      credit.Period
	PeriodStart time.Time
}

// Crossed reports whether adding delta to the budget's spend takes it over
// its limit for the first time this period.
func (b Budget) Crossed(delta decimal.Decimal) bool {
	return delta.IsPositive() && !b.Spent.GreaterThan(b.Limit) && b.Spent.Add(delta).GreaterThan(b.Limit)
}

// CheckBudgets decides what burning credits does to the budgets of a pool
// and its parents: the first hard budget it would exceed (the burn is then
// denied, whatever the parents hold), and the soft budgets it takes over
// their limit for the first time this period (each raises an alert).
func CheckBudgets(bs []Budget, credits decimal.Decimal) (hard *Budget, crossed []Budget) {
	if !credits.IsPositive() {
		return nil, nil
	}
	for i, b := range bs {
		after := b.Spent.Add(credits)
		if !after.GreaterThan(b.Limit) {
			continue
		}
		if b.Hard {
			return &bs[i], nil
		}
		if !b.Spent.GreaterThan(b.Limit) {
			crossed = append(crossed, b)
		}
	}
	return nil, crossed
}

// budgetEpoch anchors budget periods on calendar boundaries in UTC.
var budgetEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// BudgetPeriodStart is the start of the calendar period (UTC) of p containing t.
func BudgetPeriodStart(p credit.Period, t time.Time) time.Time {
	s := Schedule{Start: budgetEpoch, Period: p, Location: time.UTC}
	return s.Boundary(s.Index(t))
}
