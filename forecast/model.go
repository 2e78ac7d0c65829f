package forecast

import (
	"fmt"
	"math"
	"time"

	"github.com/shopspring/decimal"
)

// z80 is the standard normal quantile of 0.9: -/+ z80 sigma holds about 80%
// of a normal distribution.
const z80 = 1.2815515655446004

// model is a fitted burn model.
type model struct {
	method string
	// at returns the expected burn of the h-th day ahead (1: Today) and the
	// half-width of its prediction interval; either may be negative or, in
	// theory, not finite: days clamps them.
	at func(h int) (burn, half float64)
}

// history returns the days of burn the model uses: the last MaxHistoryDays,
// without the zeros before the first burn.
func history(burn []decimal.Decimal) []float64 {
	if len(burn) > MaxHistoryDays {
		burn = burn[len(burn)-MaxHistoryDays:]
	}
	for len(burn) > 0 && burn[0].IsZero() {
		burn = burn[1:]
	}
	y := make([]float64, len(burn))
	for i, b := range burn {
		y[i] = b.InexactFloat64()
	}
	return y
}

// fit chooses the model by the length of the history (see the package doc).
func fit(y []float64) model {
	switch {
	case len(y) == 0:
		return model{method: "no history", at: func(int) (float64, float64) { return 0, 0 }}
	case len(y) < MinSeasonal:
		return meanModel(y)
	default:
		return holtWinters(y)
	}
}

// meanModel forecasts the mean of y every day, with a band from the sample
// standard deviation for a new independent draw: s sqrt(1 + 1/n).
func meanModel(y []float64) model {
	n := float64(len(y))
	mean := meanOf(y)
	s := mean // one day: no spread can be measured, assume a wide one
	if len(y) > 1 {
		var ss float64
		for _, v := range y {
			ss += (v - mean) * (v - mean)
		}
		s = math.Sqrt(ss / (n - 1))
	}
	half := z80 * s * math.Sqrt(1+1/n)
	return model{
		method: fmt.Sprintf("mean of %d days (fewer than %d: no trend, no seasonality)", len(y), MinSeasonal),
		at:     func(int) (float64, float64) { return mean, half },
	}
}

// days evaluates m over n days from today, clamped at zero and rounded.
func (m model) days(today time.Time, n int) []Day {
	out := make([]Day, n)
	for i := range out {
		burn, half := m.at(i + 1)
		half = math.Abs(half)
		out[i] = Day{
			Date: today.Add(time.Duration(i) * day),
			Burn: credits(burn),
			Low:  credits(burn - half),
			High: credits(burn + half),
		}
	}
	return out
}

// credits converts a statistic to credits: 4 places, never negative, zero
// for a value that is not finite.
func credits(x float64) decimal.Decimal {
	if math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 {
		return decimal.Zero
	}
	return decimal.NewFromFloat(x).Round(4)
}
