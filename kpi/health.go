package kpi

import (
	"context"
	"database/sql"
	"sort"
	"strings"
	"time"

	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/store"
)

// Health is one organisation's burn signal at a time: its current
// billing period (its subscription's; without one, the calendar month),
// what the period allowed and burned, its pace and its last day's burn
// against its usual one.
//
//	pace      = (burned / allowance) / elapsed, elapsed the share of the period gone
//	ANOMALY   the last 24 hours burned more than AnomalyFactor x the usual
//	          day (the mean of the 28 days before), and the usual day burned
//	EXPANSION pace above 1: on pace to exhaust the allowance before the period ends
//	LOW_BURN  pace below LowBurnPace, once LowBurnAfter of the period is gone
//	HEALTHY   otherwise
//
// The allowance is what arrived in the period: new grants and rolled-in
// credits; burned counts burns and overage. The first status that holds,
// in that order, is the organisation's.
type Health struct {
	OrganizationID         int
	Status                 string
	PeriodStart, PeriodEnd time.Time
	Allowance, Burned      decimal.Decimal
	Elapsed                decimal.Decimal  // share of the period gone, 0..1
	Pace                   *decimal.Decimal // nil: no allowance or nothing elapsed
	BurnLastDay, BurnUsual decimal.Decimal  // the last 24 hours; the usual day
	Reason                 string
}

// Thresholds of the health statuses.
var (
	AnomalyFactor = decimal.NewFromInt(3)
	LowBurnPace   = decimal.RequireFromString("0.5")
	LowBurnAfter  = decimal.RequireFromString("0.25")
)

// healthChunk is how many organisations one statement sums the periods of.
const healthChunk = 5000

// usualDays is the window the usual day is the mean of.
const usualDays = 28

// AccountHealth is every organisation's health at asOf, by id.
func AccountHealth(ctx context.Context, db *store.DB, asOf time.Time) ([]Health, error) {
	asOf = asOf.UTC()
	b, err := loadBook(ctx, db.Client)
	if err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(b.orgs))
	for id := range b.orgs {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := make([]Health, len(ids))
	starts := make([]time.Time, len(ids))
	for i, id := range ids {
		h := Health{OrganizationID: id}
		h.PeriodStart, h.PeriodEnd = b.periodAt(id, asOf)
		starts[i] = h.PeriodStart
		out[i] = h
	}
	period := map[int]periodSum{}
	for lo := 0; lo < len(ids); lo += healthChunk { // SQLite binds at most 32,766 values a statement
		hi := min(lo+healthChunk, len(ids))
		part, err := periodSums(ctx, db, ids[lo:hi], starts[lo:hi], asOf)
		if err != nil {
			return nil, err
		}
		for k, v := range part {
			period[k] = v
		}
	}
	days, err := dailyBurn(ctx, db, asOf)
	if err != nil {
		return nil, err
	}
	for i := range out {
		h := &out[i]
		s := period[h.OrganizationID]
		h.Allowance, h.Burned = s.allowance, s.burned
		d := days[h.OrganizationID]
		h.BurnLastDay, h.BurnUsual = d.last, d.usual.DivRound(decimal.NewFromInt(usualDays), 4)
		h.classify(asOf)
	}
	return out, nil
}

// periodAt is the organisation's billing period containing t.
func (b *book) periodAt(org int, t time.Time) (time.Time, time.Time) {
	if s := b.subAt(org, t); s != nil {
		if p := b.planAt(s, t); p != nil {
			loc, err := time.LoadLocation(s.TimeZone)
			if err != nil {
				loc = time.UTC
			}
			sched := engine.Schedule{Start: s.StartsAt, Period: p.Period, Location: loc}
			return sched.Bounds(sched.Index(t))
		}
	}
	m := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return m, m.AddDate(0, 1, 0)
}

func (h *Health) classify(asOf time.Time) {
	h.Elapsed = decimal.NewFromInt(int64(asOf.Sub(h.PeriodStart))).DivRound(decimal.NewFromInt(int64(h.PeriodEnd.Sub(h.PeriodStart))), 4)
	if h.Allowance.IsPositive() && h.Elapsed.IsPositive() {
		p := h.Burned.Div(h.Allowance).DivRound(h.Elapsed, 4)
		h.Pace = &p
	}
	switch {
	case h.BurnUsual.IsPositive() && h.BurnLastDay.GreaterThan(h.BurnUsual.Mul(AnomalyFactor)):
		h.Status, h.Reason = "ANOMALY", "the last 24 hours burned "+h.BurnLastDay.String()+", over "+AnomalyFactor.String()+"x the usual day's "+h.BurnUsual.String()
	case h.Pace != nil && h.Pace.GreaterThan(decimal.NewFromInt(1)):
		h.Status, h.Reason = "EXPANSION", "on pace to burn "+h.Pace.String()+"x the period's allowance of "+h.Allowance.String()+": it runs out before the period ends"
	case h.Pace != nil && h.Pace.LessThan(LowBurnPace) && !h.Elapsed.LessThan(LowBurnAfter):
		h.Status, h.Reason = "LOW_BURN", "burning at "+h.Pace.String()+"x the pace of its allowance of "+h.Allowance.String()+": adoption work"
	default:
		h.Status, h.Reason = "HEALTHY", "burning at a pace its allowance covers"
	}
}

type periodSum struct{ allowance, burned decimal.Decimal }

// periodSums sums each organisation's allowance and burn from its period's
// start to asOf, in one statement (the starts are bound as a table).
func periodSums(ctx context.Context, db *store.DB, orgs []int, starts []time.Time, asOf time.Time) (map[int]periodSum, error) {
	out := map[int]periodSum{}
	if len(orgs) == 0 {
		return out, nil
	}
	d := dialectOf(db)
	var table string
	var args []any
	if d.pg {
		ids, ts := make([]int64, len(orgs)), make([]string, len(orgs))
		for i, id := range orgs {
			ids[i], ts[i] = int64(id), starts[i].UTC().Format(time.RFC3339Nano)
		}
		table = "SELECT * FROM unnest($2::bigint[], $3::timestamptz[]) AS v(org, start)"
		args = []any{asOf.UTC(), pq.Array(ids), pq.Array(ts)}
	} else {
		vals := make([]string, len(orgs))
		args = []any{asOf.UTC()}
		for i, id := range orgs {
			args = append(args, id, starts[i].UTC())
			vals[i] = "(" + d.p(len(args)-1) + ", " + d.p(len(args)) + ")"
		}
		table = "SELECT column1 AS org, column2 AS start FROM (VALUES " + strings.Join(vals, ", ") + ")"
	}
	q := `WITH p AS (` + table + `)
SELECT le.organization_id,
  ` + d.sum("CASE WHEN le.kind IN ('GRANT', 'ROLLOVER_IN') AND le.usage_event_id IS NULL THEN le.amount END") + `,
  ` + d.sum("CASE WHEN le.kind IN ('BURN', 'OVERAGE') THEN le.amount END") + `
FROM ledger_entries le JOIN p ON p.org = le.organization_id
WHERE le.created_at >= p.start AND le.created_at < ` + d.p(1) + ` AND le.kind IN ('GRANT', 'ROLLOVER_IN', 'BURN', 'OVERAGE')
GROUP BY 1`
	err := each(ctx, db, q, args, func(rows *sql.Rows) error {
		var (
			org             int
			allowed, burned string
		)
		if err := rows.Scan(&org, &allowed, &burned); err != nil {
			return err
		}
		a, err := decimal.NewFromString(allowed)
		if err != nil {
			return err
		}
		bu, err := decimal.NewFromString(burned)
		out[org] = periodSum{allowance: a, burned: bu.Neg()}
		return err
	})
	return out, err
}

type daySums struct{ last, usual decimal.Decimal }

// dailyBurn sums each organisation's burn of the last 24 hours before
// asOf and of the 28 days before those.
func dailyBurn(ctx context.Context, db *store.DB, asOf time.Time) (map[int]daySums, error) {
	d := dialectOf(db)
	day := asOf.Add(-24 * time.Hour)
	q := `SELECT le.organization_id,
  ` + d.sum("CASE WHEN le.created_at >= "+d.p(2)+" THEN le.amount END") + `,
  ` + d.sum("CASE WHEN le.created_at < "+d.p(2)+" THEN le.amount END") + `
FROM ledger_entries le
WHERE le.kind IN ('BURN', 'OVERAGE') AND le.created_at >= ` + d.p(1) + ` AND le.created_at < ` + d.p(3) + `
GROUP BY 1`
	out := map[int]daySums{}
	err := each(ctx, db, q, utcArgs(day.Add(-usualDays*24*time.Hour), day, asOf), func(rows *sql.Rows) error {
		var (
			org         int
			last, usual string
		)
		if err := rows.Scan(&org, &last, &usual); err != nil {
			return err
		}
		l, err := decimal.NewFromString(last)
		if err != nil {
			return err
		}
		u, err := decimal.NewFromString(usual)
		out[org] = daySums{last: l.Neg(), usual: u.Neg()}
		return err
	})
	return out, err
}
