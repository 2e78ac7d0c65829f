package forecast_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/forecast"
)

// today is a Monday; history day i of n is today - (n-i) days.
var today = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

const dayDur = 24 * time.Hour

// series builds n days of history ending the day before today from f(t,
// date), t counting from the first day of history.
func series(n int, f func(t int, date time.Time) float64) []decimal.Decimal {
	return seriesTo(today, n, f)
}

// seriesTo is series ending the day before end.
func seriesTo(end time.Time, n int, f func(t int, date time.Time) float64) []decimal.Decimal {
	out := make([]decimal.Decimal, n)
	for i := range out {
		out[i] = decimal.NewFromFloat(f(i, end.Add(time.Duration(i-n)*dayDur))).Round(4)
	}
	return out
}

// constant is n days of v credits.
func constant(n int, v float64) []decimal.Decimal {
	return series(n, func(int, time.Time) float64 { return v })
}

// weekly is 100 credits on weekdays and 20 on weekends, plus slope*t.
func weekly(slope float64) func(t int, date time.Time) float64 {
	return func(t int, date time.Time) float64 {
		base := 100.0
		if wd := date.Weekday(); wd == time.Saturday || wd == time.Sunday {
			base = 20
		}
		return base + slope*float64(t)
	}
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// TestPredictSeasonal checks the forecast of 14 days after 12 weeks of
// weekdays 100, weekends 20 and a trend of +1/day, against what the series
// goes on to be. Bounds: mean absolute percentage error under 5% without
// noise; with multiplicative noise uniform in +/-10% (math/rand/v2, fixed
// seed) on history and actuals alike, under 12% (the noise alone costs
// about 5%). Measured: see the test log (go test -v). A Thursday start
// checks that the season follows the calendar, not the slice index.
func TestPredictSeasonal(t *testing.T) {
	thursday := today.Add(3 * dayDur)
	tests := []struct {
		name    string
		start   time.Time
		noise   float64
		maxMAPE float64
	}{
		{"noiseless", today, 0, 0.05},
		{"noiseless from a thursday", thursday, 0, 0.05},
		{"noise 10%", today, 0.10, 0.12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 11))
			noisy := func(t int, date time.Time) float64 {
				return weekly(1)(t, date) * (1 + tt.noise*(2*rng.Float64()-1))
			}
			const n, h = 84, 14
			f, err := forecast.Predict(forecast.Input{Burn: seriesTo(tt.start, n, noisy), Today: tt.start, HorizonDays: h, Available: dec("100000")})
			if err != nil {
				t.Fatalf("Predict: %v", err)
			}
			if !strings.HasPrefix(f.Method, "holt-winters") || f.HistoryDays != n {
				t.Fatalf("Method, HistoryDays = %q, %d, want holt-winters, %d", f.Method, f.HistoryDays, n)
			}
			var ape float64
			covered := 0
			for i, d := range f.Days {
				actual := noisy(n+i, d.Date)
				ape += math.Abs(d.Burn.InexactFloat64()-actual) / actual
				if d.Low.InexactFloat64() <= actual && actual <= d.High.InexactFloat64() {
					covered++
				}
			}
			mape := ape / h
			t.Logf("%s: MAPE %.2f%%, %d/%d actuals inside the 80%% interval", f.Method, 100*mape, covered, h)
			if mape >= tt.maxMAPE {
				t.Errorf("MAPE = %.2f%%, want < %.0f%%", 100*mape, 100*tt.maxMAPE)
			}
		})
	}
}

// TestPredictModels checks the choice of model and its forecast on simple
// series: every day's Burn, and Low <= Burn <= High.
func TestPredictModels(t *testing.T) {
	tests := []struct {
		name           string
		burn           []decimal.Decimal
		method         string // prefix
		history        int
		want, low, hi  string // every day; "" skips the bound
		dailyBurnWant  string
		expectNoSpread bool
	}{
		{name: "flat 28 days", burn: constant(28, 50), method: "holt-winters", history: 28, want: "50", low: "50", hi: "50", dailyBurnWant: "50"},
		// mean 30, s = sqrt(250) = 15.8114; half = 1.28155 * 15.8114 * sqrt(1 + 1/5) = 22.1971
		{name: "short 5 days", burn: []decimal.Decimal{dec("10"), dec("20"), dec("30"), dec("40"), dec("50")}, method: "mean of 5 days", history: 5, want: "30", low: "7.8029", hi: "52.1971", dailyBurnWant: "30"},
		{name: "one day", burn: constant(1, 40), method: "mean of 1 days", history: 1, want: "40", dailyBurnWant: "40"},
		{name: "empty", burn: nil, method: "no history", want: "0", low: "0", hi: "0", dailyBurnWant: "0"},
		{name: "all zero", burn: constant(30, 0), method: "no history", want: "0", low: "0", hi: "0", dailyBurnWant: "0"},
		// the 20 zero days before the pool's first burn are dropped
		{name: "leading zeros", burn: append(constant(20, 0), constant(6, 12)...), method: "mean of 6 days", history: 6, want: "12", low: "12", hi: "12", dailyBurnWant: "12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := forecast.Predict(forecast.Input{Burn: tt.burn, Today: today, HorizonDays: 10})
			if err != nil {
				t.Fatalf("Predict: %v", err)
			}
			if !strings.HasPrefix(f.Method, tt.method) || f.HistoryDays != tt.history {
				t.Errorf("Method, HistoryDays = %q, %d, want %q..., %d", f.Method, f.HistoryDays, tt.method, tt.history)
			}
			if len(f.Days) != 10 {
				t.Fatalf("len(Days) = %d, want 10", len(f.Days))
			}
			for i, d := range f.Days {
				checkDay(t, i, d, tt.want, tt.low, tt.hi)
			}
			if !f.DailyBurn.Equal(dec(tt.dailyBurnWant)) {
				t.Errorf("DailyBurn = %s, want %s", f.DailyBurn, tt.dailyBurnWant)
			}
		})
	}
}

// checkDay checks day i's date, burn and (when given) bounds, and their order.
func checkDay(t *testing.T, i int, d forecast.Day, burn, low, high string) {
	t.Helper()
	if want := today.Add(time.Duration(i) * dayDur); !d.Date.Equal(want) {
		t.Errorf("Days[%d].Date = %s, want %s", i, d.Date, want)
	}
	if !d.Burn.Equal(dec(burn)) {
		t.Errorf("Days[%d].Burn = %s, want %s", i, d.Burn, burn)
	}
	if low != "" && !d.Low.Equal(dec(low)) {
		t.Errorf("Days[%d].Low = %s, want %s", i, d.Low, low)
	}
	if high != "" && !d.High.Equal(dec(high)) {
		t.Errorf("Days[%d].High = %s, want %s", i, d.High, high)
	}
	if d.Low.IsNegative() || d.Low.GreaterThan(d.Burn) || d.Burn.GreaterThan(d.High) {
		t.Errorf("Days[%d] = %s <= %s <= %s, want 0 <= Low <= Burn <= High", i, d.Low, d.Burn, d.High)
	}
}

// TestPredictClampsAndDamps checks over a year that a falling series clamps
// at zero (and reaches it) and a rising one stays bounded: damping caps the
// trend's contribution at phi/(1-phi) <= 49 days of slope.
func TestPredictClampsAndDamps(t *testing.T) {
	tests := []struct {
		name     string
		f        func(t int, date time.Time) float64
		maxBurn  float64
		wantZero bool
	}{
		// weekdays fall from 300 to 92.5 over 84 days, weekends from 220 to 12.5
		{"falling", func(t int, d time.Time) float64 { return 200 + weekly(-2.5)(t, d) }, 300, true},
		// the last weekday is 183; at most 49 more slopes, plus room for noise in the fit
		{"rising", weekly(1), 183 + 49 + 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := forecast.Predict(forecast.Input{Burn: series(84, tt.f), Today: today, HorizonDays: 366})
			if err != nil {
				t.Fatalf("Predict: %v", err)
			}
			zero := false
			for i, d := range f.Days {
				if d.Low.IsNegative() || d.Burn.GreaterThan(d.High) || d.Low.GreaterThan(d.Burn) {
					t.Fatalf("Days[%d] = %s <= %s <= %s, want 0 <= Low <= Burn <= High", i, d.Low, d.Burn, d.High)
				}
				if d.Burn.InexactFloat64() > tt.maxBurn {
					t.Fatalf("Days[%d].Burn = %s, want <= %g", i, d.Burn, tt.maxBurn)
				}
				zero = zero || d.Burn.IsZero()
			}
			if zero != tt.wantZero {
				t.Errorf("some day's Burn is zero: %v, want %v (%s)", zero, tt.wantZero, f.Method)
			}
		})
	}
}

// TestPredictInvalid checks bad input gives a VALIDATION error naming the field.
func TestPredictInvalid(t *testing.T) {
	ok := forecast.Input{Burn: constant(3, 1), Today: today, HorizonDays: 30, Available: dec("10")}
	past := today.Add(-time.Hour)
	tests := []struct {
		name  string
		edit  func(*forecast.Input)
		field string
	}{
		{"horizon 0", func(in *forecast.Input) { in.HorizonDays = 0 }, "horizonDays"},
		{"horizon 400", func(in *forecast.Input) { in.HorizonDays = 400 }, "horizonDays"},
		{"negative available", func(in *forecast.Input) { in.Available = dec("-1") }, "available"},
		{"negative burn", func(in *forecast.Input) { in.Burn = []decimal.Decimal{dec("-0.5")} }, "burn"},
		{"huge burn", func(in *forecast.Input) { in.Burn = []decimal.Decimal{dec("1e19")} }, "burn"},
		{"today not midnight", func(in *forecast.Input) { in.Today = today.Add(time.Hour) }, "today"},
		{"today zero", func(in *forecast.Input) { in.Today = time.Time{} }, "today"},
		{"negative expiry", func(in *forecast.Input) { in.Expiries = []forecast.Scheduled{{At: today, Credits: dec("-1")}} }, "expiries"},
		{"past allocation", func(in *forecast.Input) { in.Allocations = []forecast.Scheduled{{At: past, Credits: dec("1")}} }, "allocations"},
		{"period ended", func(in *forecast.Input) { in.PeriodEnd = &today }, "periodEnd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.edit(&in)
			_, err := forecast.Predict(in)
			var e *credit.Error
			if !errors.As(err, &e) || e.Code != credit.CodeValidation || e.Field != tt.field {
				t.Errorf("Predict(%s) = %v, want a VALIDATION error on %q", tt.name, err, tt.field)
			}
		})
	}
	if _, err := forecast.Predict(ok); err != nil {
		t.Errorf("Predict(valid input) = %v, want nil", err)
	}
}

// BenchmarkPredict forecasts 90 days from 182 days of seasonal history.
func BenchmarkPredict(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := forecast.Input{
		Burn: series(182, func(t int, d time.Time) float64 {
			return weekly(0.5)(t, d) * (0.9 + 0.2*rng.Float64())
		}),
		Today: today, HorizonDays: 90, Available: dec("5000"),
		Expiries: []forecast.Scheduled{{At: today.Add(10 * dayDur), Credits: dec("1000")}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := forecast.Predict(in); err != nil {
			b.Fatal(err)
		}
	}
}
