package forecast_test

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/forecast"
)

// at is today plus d days and h hours.
func at(d int, h time.Duration) time.Time { return today.Add(time.Duration(d)*dayDur + h*time.Hour) }

func sched(t time.Time, credits string) forecast.Scheduled {
	return forecast.Scheduled{At: t, Credits: dec(credits)}
}

// balanceTest is a case of TestPredictBalance.
type balanceTest struct {
	name        string
	burn        []decimal.Decimal
	horizon     int
	available   string
	expiries    []forecast.Scheduled
	allocations []forecast.Scheduled
	periodEnd   int // day; 0: none
	depletes    int // day; -1: never
	overage     string
	breakage    string
	until       int      // day
	unused      []string // Accounted[i].Unused, in order
}

// flat is 28 days of 100 credits (Holt-Winters forecasts exactly 100 a
// day); none is no history.
var flat, none = constant(28, 100), []decimal.Decimal(nil)

// balanceTests: burn is 100 credits every day (flat) or nothing (none);
// day n is today + n.
var balanceTests = []balanceTest{
	// 1000 / 100 = 10 days: days 0..9, empty at the end of day 9, the 10th
	// (2026-03-11, today being 2026-03-02); overage 30*100 - 1000 = 2000
	{name: "depletes on the 10th day", burn: flat, horizon: 30, available: "1000", depletes: 9, overage: "2000", breakage: "0", until: 30},
	{name: "lasts the horizon", burn: flat, horizon: 10, available: "1001", depletes: -1, overage: "0", breakage: "0", until: 10},
	// days 0..2 burn 300 of the 500 expiring at 00:00 of day 3, before its
	// burn: 200 breakage; the free 500 last days 3..7; overage days 8, 9
	{name: "expiry at midnight", burn: flat, horizon: 10, available: "1000", expiries: []forecast.Scheduled{sched(at(3, 0), "500")},
		depletes: 7, overage: "200", breakage: "200", until: 10, unused: []string{"200"}},
	// expiring at 12:00 on day 3, at the end of the day: days 0..3 burn
	// 400 of it, 100 breakage; the free 500 last days 4..8; overage day 9
	{name: "expiry mid-day", burn: flat, horizon: 10, available: "1000", expiries: []forecast.Scheduled{sched(at(3, 12), "500")},
		depletes: 8, overage: "100", breakage: "100", until: 10, unused: []string{"100"}},
	// all 500 expire at day 3 after 300 burned: 200 breakage, nothing left
	// for day 3 (depletes); overage days 3..9 = 700
	{name: "all credits expiring", burn: flat, horizon: 10, available: "500", expiries: []forecast.Scheduled{sched(at(3, 0), "500")},
		depletes: 3, overage: "700", breakage: "200", until: 10, unused: []string{"200"}},
	// expiries 200 + 300 = 500 > 300 available: the soonest is cut to 0;
	// nothing burns, so the 300 left expire unused
	{name: "expiries capped to available", burn: none, horizon: 15, available: "300", expiries: []forecast.Scheduled{sched(at(10, 0), "300"), sched(at(1, 0), "200")},
		depletes: -1, overage: "0", breakage: "300", until: 15, unused: []string{"0", "300"}},
	{name: "no history: every expiry is breakage", burn: none, horizon: 10, available: "1000", expiries: []forecast.Scheduled{sched(at(5, 0), "400"), sched(at(10, 0), "100")},
		allocations: []forecast.Scheduled{sched(at(2, 0), "50")}, depletes: -1, overage: "0", breakage: "500", until: 10, unused: []string{"0", "400", "100"}},
	// the 500 arriving at 06:00 on day 5 count from its start: 1500 last days 0..14
	{name: "allocation postpones depletion", burn: flat, horizon: 30, available: "1000", allocations: []forecast.Scheduled{sched(at(5, 6), "500")},
		depletes: 14, overage: "1500", breakage: "0", until: 30, unused: []string{"0"}},
	// 300 last days 0..2; days 3, 4 are overage (200) that the 1000
	// arriving on day 5 does not pay back; it lasts days 5..14
	{name: "allocation after depletion", burn: flat, horizon: 15, available: "300", allocations: []forecast.Scheduled{sched(at(5, 0), "1000")},
		depletes: 2, overage: "200", breakage: "0", until: 15, unused: []string{"0"}},
	// 500 last days 0..4; overage days 5..7 = 300 by the period end at
	// day 8, when the next period's 1000 arrive
	{name: "overage by period end", burn: flat, horizon: 30, available: "500", allocations: []forecast.Scheduled{sched(at(8, 0), "1000")},
		periodEnd: 8, depletes: 4, overage: "300", breakage: "0", until: 8, unused: []string{"0"}},
	{name: "period end beyond the horizon", burn: flat, horizon: 10, available: "500", periodEnd: 20, depletes: 4, overage: "500", breakage: "0", until: 10},
	// only the expiry before the period end (day 10) is breakage by it
	{name: "breakage by period end", burn: none, horizon: 30, available: "500", expiries: []forecast.Scheduled{sched(at(3, 0), "200"), sched(at(12, 0), "300")},
		periodEnd: 10, depletes: -1, overage: "0", breakage: "200", until: 10, unused: []string{"200", "300"}},
	// an expiry at the horizon's end is accounted; one after it is not
	{name: "expiry at the horizon end", burn: none, horizon: 10, available: "500", expiries: []forecast.Scheduled{sched(at(10, 0), "100"), sched(at(10, 1), "100")},
		depletes: -1, overage: "0", breakage: "100", until: 10, unused: []string{"100"}},
}

// TestPredictBalance checks depletion, overage, breakage and the accounted
// events of balanceTests.
func TestPredictBalance(t *testing.T) {
	for _, tt := range balanceTests {
		t.Run(tt.name, func(t *testing.T) {
			in := forecast.Input{Burn: tt.burn, Today: today, HorizonDays: tt.horizon, Available: dec(tt.available), Expiries: tt.expiries, Allocations: tt.allocations}
			if tt.periodEnd > 0 {
				end := at(tt.periodEnd, 0)
				in.PeriodEnd = &end
			}
			f, err := forecast.Predict(in)
			if err != nil {
				t.Fatalf("Predict: %v", err)
			}
			checkBalance(t, f, tt.depletes, tt.overage, tt.breakage, tt.until)
			if len(f.Accounted) != len(tt.unused) {
				t.Fatalf("Accounted = %v, want %d events", f.Accounted, len(tt.unused))
			}
			for i, e := range f.Accounted {
				if !e.Unused.Equal(dec(tt.unused[i])) {
					t.Errorf("Accounted[%d] = %+v, want Unused %s", i, e, tt.unused[i])
				}
			}
		})
	}
}

// checkBalance checks a forecast's depletion day, overage, breakage and Until.
func checkBalance(t *testing.T, f forecast.Forecast, depletes int, overage, breakage string, until int) {
	t.Helper()
	switch {
	case depletes < 0 && f.DepletesAt != nil:
		t.Errorf("DepletesAt = %s, want nil", f.DepletesAt)
	case depletes >= 0 && (f.DepletesAt == nil || !f.DepletesAt.Equal(at(depletes, 0))):
		t.Errorf("DepletesAt = %v, want %s", f.DepletesAt, at(depletes, 0))
	}
	if !f.ExpectedOverage.Equal(dec(overage)) {
		t.Errorf("ExpectedOverage = %s, want %s", f.ExpectedOverage, overage)
	}
	if !f.ExpectedBreakage.Equal(dec(breakage)) {
		t.Errorf("ExpectedBreakage = %s, want %s", f.ExpectedBreakage, breakage)
	}
	if !f.Until.Equal(at(until, 0)) {
		t.Errorf("Until = %s, want %s", f.Until, at(until, 0))
	}
}

// TestPredictAccountedKinds checks the events are by At with their kinds
// and capped credits.
func TestPredictAccountedKinds(t *testing.T) {
	in := forecast.Input{Today: today, HorizonDays: 10, Available: dec("100"),
		Expiries:    []forecast.Scheduled{sched(at(4, 0), "80"), sched(at(2, 0), "50")},
		Allocations: []forecast.Scheduled{sched(at(3, 0), "10"), sched(at(10, 0), "99")},
	}
	f, err := forecast.Predict(in)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	want := []forecast.Event{
		{Kind: forecast.KindExpiry, At: at(2, 0), Credits: dec("20"), Unused: dec("20")}, // 50 + 80 > 100: cut by 30
		{Kind: forecast.KindAllocation, At: at(3, 0), Credits: dec("10")},
		{Kind: forecast.KindExpiry, At: at(4, 0), Credits: dec("80"), Unused: dec("80")},
	}
	if len(f.Accounted) != len(want) {
		t.Fatalf("Accounted = %+v, want %+v", f.Accounted, want)
	}
	for i, e := range f.Accounted {
		w := want[i]
		if e.Kind != w.Kind || !e.At.Equal(w.At) || !e.Credits.Equal(w.Credits) || !e.Unused.Equal(w.Unused) {
			t.Errorf("Accounted[%d] = %+v, want %+v", i, e, w)
		}
	}
}
