package ledger

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/forecast"
	"github.com/creditd/creditd/report"
)

// PoolForecast is a pool's forecast.
type PoolForecast struct {
	PoolID int
	forecast.Forecast
}

// Forecast is the credit predictor's answer for a pool (forecast.Predict)
// from its last 182 days of burn, its balance, the expiries of its grants
// and, for the pool that receives a subscription's included credits, the
// next allocations within the horizon.
func (s *Service) Forecast(ctx context.Context, poolID, horizonDays int) (PoolForecast, error) {
	if horizonDays < 1 || horizonDays > forecast.MaxHorizonDays {
		return PoolForecast{}, credit.Invalid("horizonDays", "must be between 1 and %d", forecast.MaxHorizonDays)
	}
	p, err := s.Pool(ctx, poolID)
	if err != nil || p == nil {
		return PoolForecast{}, errOr(err, credit.NotFound("pool", poolID))
	}
	st, err := s.readPool(ctx, p, s.Now(), 0)
	if err != nil {
		return PoolForecast{}, err
	}
	fc, err := forecast.Predict(st.forecastInput(horizonDays))
	return PoolForecast{PoolID: p.ID, Forecast: fc}, err
}

// forecastInput is what the predictor needs, from the alert facts: the
// burn series, the balance, the expiries and, with a billing period, its
// end and the allocations of the periods starting within the horizon.
func (st poolState) forecastInput(horizonDays int) forecast.Input {
	f, ps := st.facts, st.period
	today := time.Date(f.Now.Year(), f.Now.Month(), f.Now.Day(), 0, 0, 0, 0, time.UTC)
	in := forecast.Input{Burn: st.series.days, Today: today, HorizonDays: horizonDays, Available: f.Available}
	for _, e := range f.Expiring {
		in.Expiries = append(in.Expiries, forecast.Scheduled{At: e.At, Credits: e.Credits})
	}
	if ps.hasPeriod {
		end := ps.end
		in.PeriodEnd = &end
		horizon := today.AddDate(0, 0, horizonDays)
		for at, n := ps.end, 0; at.Before(horizon) && ps.allowance.IsPositive() && n < forecast.MaxHorizonDays; n++ {
			in.Allocations = append(in.Allocations, forecast.Scheduled{At: at, Credits: ps.allowance})
			at = ps.next(at)
		}
	}
	return in
}

// dailyBurn is the pool's credits used per UTC day over the historyDays
// before today (oldest first, zero on days without use), and today's, as
// the database sums them (report.Summary).
func (s *Service) dailyBurn(ctx context.Context, p *ent.Pool, now time.Time) (burnSeries, error) {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := today.AddDate(0, 0, -historyDays)
	if created := p.CreatedAt.UTC(); created.After(first) {
		first = time.Date(created.Year(), created.Month(), created.Day(), 0, 0, 0, 0, time.UTC)
	}
	out := burnSeries{first: first, today: decimal.Zero}
	rows, err := report.Summary(ctx, s.db, report.SummaryQuery{OrganizationID: p.OrganizationID, From: first, To: now.Add(time.Microsecond),
		GroupBy: []report.GroupBy{report.ByDay}, PoolIDs: []int{p.ID}})
	if err != nil {
		return out, err
	}
	n := int(today.Sub(first) / (24 * time.Hour))
	out.days = make([]decimal.Decimal, n)
	for i := range out.days {
		out.days[i] = decimal.Zero
	}
	for _, r := range rows {
		i := int(r.Period.Sub(first) / (24 * time.Hour))
		switch {
		case i == n:
			out.today = r.Credits
		case i >= 0 && i < n:
			out.days[i] = r.Credits
		}
	}
	return out, nil
}
