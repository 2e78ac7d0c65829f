package forecast

import (
	"time"

	"github.com/shopspring/decimal"
)

// Horizon and history limits.
const (
	MaxHorizonDays = 366 // the longest forecast Predict makes
	MaxHistoryDays = 182 // the most recent days of Burn the model uses
	SeasonDays     = 7   // the season: a week
	MinSeasonal    = 2 * SeasonDays
)

// day is one forecast day.
const day = 24 * time.Hour

// Input is a pool's history and schedule.
type Input struct {
	// Burn is credits burned per UTC day, oldest first; the last element is
	// the most recent complete day (the day before Today).
	Burn []decimal.Decimal
	// Today is the start (00:00 UTC) of the first forecast day.
	Today time.Time
	// HorizonDays is the number of days forecast, 1..MaxHorizonDays.
	HorizonDays int
	// Available is the credits usable now.
	Available decimal.Decimal
	// Expiries are credits that expire unused if not burned first: the
	// remaining credits of grants with their expiry times.
	Expiries []Scheduled
	// Allocations are credits that will arrive at At (for example the next
	// period's included credits).
	Allocations []Scheduled
	// PeriodEnd is the end of the current billing period, nil when the pool
	// has none.
	PeriodEnd *time.Time
}

// Scheduled is an amount of credits due at a time.
type Scheduled struct {
	At      time.Time
	Credits decimal.Decimal
}

// Kind is what an accounted event does to the balance.
type Kind string

const (
	KindExpiry     Kind = "EXPIRY"
	KindAllocation Kind = "ALLOCATION"
)

// Event is an expiry or allocation within the horizon that the projection
// accounted for.
type Event struct {
	Kind    Kind
	At      time.Time
	Credits decimal.Decimal // allocated, or scheduled to expire (after capping to Available)
	Unused  decimal.Decimal // EXPIRY: the credits projected to expire unused; ALLOCATION: zero
}

// Day is the expected burn of one day and its ~80% prediction interval,
// never negative.
type Day struct {
	Date            time.Time
	Burn, Low, High decimal.Decimal
}

// Forecast is the predicted burn and the projected balance.
type Forecast struct {
	Method      string // the model and its parameters, or "no history"
	HistoryDays int    // days of history the model used
	Days        []Day  // one per horizon day, from Today

	DailyBurn     decimal.Decimal // mean expected burn per day over the horizon
	DailyBurnLow  decimal.Decimal // mean of Days[i].Low
	DailyBurnHigh decimal.Decimal // mean of Days[i].High

	// DepletesAt is the first day with burn wanted that ends with a zero
	// balance, nil when the balance lasts the horizon.
	DepletesAt *time.Time
	// Until is the end of the overage and breakage sums: PeriodEnd, or the
	// horizon end when PeriodEnd is nil or later.
	Until            time.Time
	ExpectedOverage  decimal.Decimal // burn beyond the balance by Until, >= 0
	ExpectedBreakage decimal.Decimal // credits expiring unused by Until, >= 0
	Accounted        []Event         // expiries and allocations within the horizon, by At
}

// Predict forecasts the burn of in.HorizonDays days from in.Today and
// projects the balance over them (see the package doc for the method). Its
// only errors are VALIDATION errors (*credit.Error) about bad input.
func Predict(in Input) (Forecast, error) {
	if err := in.Validate(); err != nil {
		return Forecast{}, err
	}
	today := in.Today.UTC()
	series := history(in.Burn)
	m := fit(series)
	days := m.days(today, in.HorizonDays)
	f := Forecast{
		Method:      m.method,
		HistoryDays: len(series),
		Days:        days,
	}
	f.DailyBurn, f.DailyBurnLow, f.DailyBurnHigh = means(days)
	f.Until = until(today, in.HorizonDays, in.PeriodEnd)
	p := project(in, today, days, f.Until)
	f.DepletesAt, f.ExpectedOverage, f.ExpectedBreakage, f.Accounted = p.depletesAt, p.overage, p.breakage, p.events
	return f, nil
}

// until is the end of the overage and breakage sums.
func until(today time.Time, horizonDays int, periodEnd *time.Time) time.Time {
	end := today.Add(time.Duration(horizonDays) * day)
	if periodEnd != nil && periodEnd.Before(end) {
		return periodEnd.UTC()
	}
	return end
}

// means returns the means of the days' burn, low and high bounds, rounded
// to 4 places.
func means(days []Day) (burn, low, high decimal.Decimal) {
	for _, d := range days {
		burn, low, high = burn.Add(d.Burn), low.Add(d.Low), high.Add(d.High)
	}
	n := decimal.NewFromInt(int64(len(days)))
	return burn.Div(n).Round(4), low.Div(n).Round(4), high.Div(n).Round(4)
}
