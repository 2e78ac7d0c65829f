package forecast_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/forecast"
)

// FuzzPredict checks invariants on any history and schedule: one day per
// horizon day, 0 <= Low <= Burn <= High, overage and breakage >= 0, no more
// breakage than there was balance, no more overage than burn, and an
// overage only after the balance depleted.
func FuzzPredict(f *testing.F) {
	f.Add([]byte{}, uint16(10), uint32(0), uint32(0), byte(0), uint16(0), byte(0))
	f.Add([]byte{100, 100, 100, 100, 100, 20, 20, 101, 102, 103, 104, 105, 21, 21, 106}, uint16(366), uint32(5000), uint32(3000), byte(5), uint16(700), byte(9))
	f.Add([]byte{0, 0, 7, 0, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 3}, uint16(30), uint32(10), uint32(50), byte(0), uint16(1), byte(0))
	f.Fuzz(func(t *testing.T, burn []byte, horizon uint16, available, expiring uint32, expiryDay byte, allocated uint16, periodDays byte) {
		in := forecast.Input{Today: today, HorizonDays: int(horizon%forecast.MaxHorizonDays) + 1, Available: decimal.NewFromInt(int64(available))}
		for _, b := range burn {
			in.Burn = append(in.Burn, decimal.NewFromInt(int64(b)).Shift(-1))
		}
		in.Expiries = []forecast.Scheduled{{At: today.Add(time.Duration(expiryDay) * 7 * time.Hour), Credits: decimal.NewFromInt(int64(expiring))}}
		in.Allocations = []forecast.Scheduled{{At: today.Add(time.Duration(expiryDay) * 11 * time.Hour), Credits: decimal.NewFromInt(int64(allocated))}}
		if periodDays > 0 {
			end := today.Add(time.Duration(periodDays) * dayDur)
			in.PeriodEnd = &end
		}
		fc, err := forecast.Predict(in)
		if err != nil {
			t.Fatalf("Predict: %v", err)
		}
		checkInvariants(t, in, fc)
	})
}

// checkInvariants checks what FuzzPredict promises.
func checkInvariants(t *testing.T, in forecast.Input, f forecast.Forecast) {
	t.Helper()
	if len(f.Days) != in.HorizonDays {
		t.Fatalf("len(Days) = %d, want %d", len(f.Days), in.HorizonDays)
	}
	total := decimal.Zero
	for i, d := range f.Days {
		if d.Low.IsNegative() || d.Low.GreaterThan(d.Burn) || d.Burn.GreaterThan(d.High) {
			t.Fatalf("Days[%d] = %s <= %s <= %s, want 0 <= Low <= Burn <= High", i, d.Low, d.Burn, d.High)
		}
		total = total.Add(d.Burn)
	}
	if f.ExpectedOverage.IsNegative() || f.ExpectedOverage.GreaterThan(total) {
		t.Errorf("ExpectedOverage = %s, want in [0, %s]", f.ExpectedOverage, total)
	}
	if f.ExpectedBreakage.IsNegative() || f.ExpectedBreakage.GreaterThan(in.Available) {
		t.Errorf("ExpectedBreakage = %s, want in [0, %s]", f.ExpectedBreakage, in.Available)
	}
	if f.ExpectedOverage.IsPositive() && f.DepletesAt == nil {
		t.Errorf("ExpectedOverage = %s with DepletesAt nil", f.ExpectedOverage)
	}
	if f.DailyBurnLow.GreaterThan(f.DailyBurn) || f.DailyBurn.GreaterThan(f.DailyBurnHigh) {
		t.Errorf("DailyBurn = %s <= %s <= %s, want ordered", f.DailyBurnLow, f.DailyBurn, f.DailyBurnHigh)
	}
}
