package ledger

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/ent/usageevent"
	"github.com/creditd/creditd/forecast"
)

// historyDays is how much burn history the alert facts and forecasts read.
const historyDays = 182

// poolState is what the alert job and the predictor read of a pool.
type poolState struct {
	facts  engine.AlertFacts
	series burnSeries
	period poolPeriod
}

// readPool reads what the alert rules and policy check of pool p at now:
// balance, allowance, today's and the usual burn, expiring credits, the
// budget, the period's uncovered runs and denied top-ups, and (horizon > 0)
// the predictor's run-out date within horizon days.
func (s *Service) readPool(ctx context.Context, p *ent.Pool, now time.Time, horizon int) (poolState, error) {
	st := poolState{facts: engine.AlertFacts{Now: now, PoolKind: p.Kind}}
	f := &st.facts
	bal, err := s.Balance(ctx, p)
	if err != nil {
		return st, err
	}
	f.Available = bal.Available
	if st.period, err = s.poolPeriod(ctx, p, now); err != nil {
		return st, err
	}
	f.PeriodStart, f.Allowance = st.period.start, st.period.allowance
	if st.series, err = s.dailyBurn(ctx, p, now); err != nil {
		return st, err
	}
	f.BurnToday = st.series.today
	f.BurnUsual = usual(st.series.days, int(now.Sub(p.CreatedAt).Hours()/24))
	if f.Expiring, err = s.expiring(ctx, p, now); err != nil {
		return st, err
	}
	if b, err := s.Budget(ctx, p); err != nil {
		return st, err
	} else if b != nil {
		f.Budget = &engine.BudgetFacts{Amount: b.Amount, Spent: b.Spent, PeriodStart: b.PeriodStart}
	}
	if f.Uncovered, err = s.uncoveredSince(ctx, p.ID, f.PeriodStart); err != nil {
		return st, err
	}
	if st.period.autoTopUp {
		if f.TopUpsDenied, err = s.deniedSince(ctx, p.ID, f.PeriodStart); err != nil {
			return st, err
		}
	}
	if horizon > 0 {
		fc, err := forecast.Predict(st.forecastInput(horizon))
		if err != nil {
			return st, err
		}
		f.DepletesAt = fc.DepletesAt
	}
	return st, nil
}

// poolPeriod is a pool's alert period: its organisation's billing period
// with the plan's included credits when the pool receives them, else the
// UTC calendar month.
type poolPeriod struct {
	start, end time.Time
	allowance  decimal.Decimal
	hasPeriod  bool
	autoTopUp  bool
	sched      engine.Schedule
}

// next is the period boundary after at.
func (ps poolPeriod) next(at time.Time) time.Time { return ps.sched.Boundary(ps.sched.Index(at) + 1) }

func (s *Service) poolPeriod(ctx context.Context, p *ent.Pool, now time.Time) (poolPeriod, error) {
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	out := poolPeriod{start: month, end: month.AddDate(0, 1, 0), allowance: decimal.Zero}
	sub, err := s.CurrentSubscription(ctx, p.OrganizationID)
	if err != nil || sub == nil {
		return out, err
	}
	pl, err := s.db.Client.Plan.Get(ctx, sub.PlanID)
	if err != nil {
		return out, err
	}
	out.sched = schedule(sub, pl)
	out.start, out.end = out.sched.Bounds(out.sched.Index(now))
	out.hasPeriod, out.autoTopUp = true, pl.OverageMode == credit.OverageAutoTopUp
	if sub.PoolID == p.ID {
		out.allowance = pl.IncludedCredits
	}
	return out, nil
}

// burnSeries is a pool's credits used per UTC day, oldest first, up to the
// day before now, and today's so far.
type burnSeries struct {
	days  []decimal.Decimal
	today decimal.Decimal
	first time.Time // the day days[0] is
}

// expiring is the pool's usable credits that have an expiry.
func (s *Service) expiring(ctx context.Context, p *ent.Pool, now time.Time) ([]engine.Expiry, error) {
	gs, err := s.db.Client.Grant.Query().Where(grant.PoolID(p.ID), grant.ExpiresAtNotNil(), grant.ExpiresAtGT(now)).All(ctx)
	if err != nil {
		return nil, err
	}
	var out []engine.Expiry
	for _, g := range gs {
		if engineGrant(g).Usable(now) {
			out = append(out, engine.Expiry{At: g.ExpiresAt.UTC(), Credits: g.Remaining})
		}
	}
	return out, nil
}

// uncoveredSince is when the pool's UNCOVERED entries since from were made.
func (s *Service) uncoveredSince(ctx context.Context, poolID int, from time.Time) ([]time.Time, error) {
	es, err := s.db.Client.LedgerEntry.Query().Where(ledgerentry.PoolID(poolID), ledgerentry.KindEQ(credit.EntryUncovered),
		ledgerentry.CreatedAtGTE(from)).Select(ledgerentry.FieldCreatedAt).Limit(1000).All(ctx)
	out := make([]time.Time, len(es))
	for i, e := range es {
		out[i] = e.CreatedAt
	}
	return out, err
}

// deniedSince is when usage on the pool was denied for want of credits
// since from (under AUTO_TOP_UP: the top-up could not buy them).
func (s *Service) deniedSince(ctx context.Context, poolID int, from time.Time) ([]time.Time, error) {
	evs, err := s.db.Client.UsageEvent.Query().Where(usageevent.PoolID(poolID), usageevent.DecisionEQ(credit.DecisionDenied),
		usageevent.ReasonCode(string(credit.CodeInsufficientCredits)), usageevent.CreatedAtGTE(from)).
		Select(usageevent.FieldCreatedAt).Limit(1000).All(ctx)
	out := make([]time.Time, len(evs))
	for i, e := range evs {
		out[i] = e.CreatedAt
	}
	return out, err
}
