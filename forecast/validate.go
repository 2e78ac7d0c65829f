package forecast

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
)

// maxDailyBurn bounds a day of history so that the float64 statistics stay
// finite (their squares and sums are far from overflowing).
var maxDailyBurn = decimal.New(1, 18)

// Validate reports the first bad field of in as a VALIDATION error: a
// horizon outside 1..MaxHorizonDays, a Today that is not 00:00 UTC, a
// negative amount, a day of burn above 1e18, an expiry or allocation before
// Today, or a PeriodEnd not after Today.
func (in Input) Validate() error {
	if in.HorizonDays < 1 || in.HorizonDays > MaxHorizonDays {
		return credit.Invalid("horizonDays", "must be between 1 and %d, got %d", MaxHorizonDays, in.HorizonDays)
	}
	today := in.Today.UTC()
	if in.Today.IsZero() || !today.Truncate(day).Equal(today) {
		return credit.Invalid("today", "must be the start (00:00 UTC) of a day, got %s", in.Today.Format(time.RFC3339Nano))
	}
	if in.Available.IsNegative() {
		return credit.Invalid("available", "must not be negative, got %s", in.Available)
	}
	for i, b := range in.Burn {
		if b.IsNegative() || b.GreaterThan(maxDailyBurn) {
			return credit.Invalid("burn", "day %d: must be between 0 and 1e18, got %s", i, b)
		}
	}
	if err := validSchedule("expiries", in.Expiries, today); err != nil {
		return err
	}
	if err := validSchedule("allocations", in.Allocations, today); err != nil {
		return err
	}
	if in.PeriodEnd != nil && !in.PeriodEnd.After(today) {
		return credit.Invalid("periodEnd", "must be after today (%s), got %s", today.Format(time.DateOnly), in.PeriodEnd.Format(time.RFC3339))
	}
	return nil
}

// validSchedule checks that every entry of s is due at or after today and
// has no negative credits.
func validSchedule(field string, s []Scheduled, today time.Time) error {
	for i, e := range s {
		if e.Credits.IsNegative() {
			return credit.Invalid(field, "entry %d: credits must not be negative, got %s", i, e.Credits)
		}
		if e.At.Before(today) {
			return credit.Invalid(field, "entry %d: at %s is before today", i, e.At.Format(time.RFC3339))
		}
	}
	return nil
}
