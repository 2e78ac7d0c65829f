package kpi

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/store"
)

// Monthly rollups. Ledger entries and usage events are immutable and
// written at the time they happen, so the sums of a month an hour past its
// end never change: the first report that needs such a month sums it once
// into kpi_entry_months and kpi_usage_months (marking it in
// kpi_rolled_months, unique, so two reports or two servers roll it once),
// and every later report reads those few rows instead of the ledger. The
// parts of a range that are not whole closed months (its first and last
// days, the current month) are read from the ledger itself.

// settle is how long after its end a month is closed: longer than any
// transaction that began before the end runs.
const settle = time.Hour

// pieces is a range split into rolled months and intervals read raw.
type pieces struct {
	months []string // 'YYYY-MM'
	raw    [][2]time.Time
}

// split splits [lo, hi) at month boundaries, rolling up first every whole
// closed month in it that is not rolled yet.
func split(ctx context.Context, db *store.DB, lo, hi, now time.Time) (pieces, error) {
	var out pieces
	rolled, err := rolledMonths(ctx, db)
	if err != nil {
		return out, err
	}
	closed := now.Add(-settle)
	rawFrom := lo
	m := time.Date(lo.Year(), lo.Month(), 1, 0, 0, 0, 0, time.UTC)
	if m.Before(lo) {
		m = m.AddDate(0, 1, 0)
	}
	for ; !m.AddDate(0, 1, 0).After(hi); m = m.AddDate(0, 1, 0) {
		end, key := m.AddDate(0, 1, 0), m.Format("2006-01")
		if end.After(closed) {
			break
		}
		if !rolled[key] {
			if err := rollUp(ctx, db, m, now); err != nil {
				return out, err
			}
		}
		if m.After(rawFrom) {
			out.raw = append(out.raw, [2]time.Time{rawFrom, m})
		}
		out.months = append(out.months, key)
		rawFrom = end
	}
	if hi.After(rawFrom) {
		out.raw = append(out.raw, [2]time.Time{rawFrom, hi})
	}
	return out, nil
}

// history is the pieces of [the ledger's first entry, t).
func history(ctx context.Context, db *store.DB, t, now time.Time) (pieces, error) {
	first, err := db.Client.LedgerEntry.Query().Order(ent.Asc(ledgerentry.FieldCreatedAt)).First(ctx)
	if ent.IsNotFound(err) || err == nil && !first.CreatedAt.Before(t) {
		return pieces{}, nil
	} else if err != nil {
		return pieces{}, fmt.Errorf("kpi: %w", err)
	}
	return split(ctx, db, first.CreatedAt.UTC(), t, now)
}

func rolledMonths(ctx context.Context, db *store.DB) (map[string]bool, error) {
	out := map[string]bool{}
	err := each(ctx, db, "SELECT month FROM kpi_rolled_months", nil, func(rows *sql.Rows) error {
		var m string
		err := rows.Scan(&m)
		out[m] = true
		return err
	})
	return out, err
}

// rollUp sums the month starting at m into the rollups, in one
// transaction, unless another report has (or is doing it: PostgreSQL
// waits for it on the unique month, then finds it done).
func rollUp(ctx context.Context, db *store.DB, m, now time.Time) error {
	d := dialectOf(db)
	key, end := m.Format("2006-01"), m.AddDate(0, 1, 0)
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("kpi rollup: %w", err)
	}
	defer tx.Rollback()
	mark := "INSERT INTO kpi_rolled_months (created_at, month) VALUES (" + d.p(1) + ", " + d.p(2) + ") ON CONFLICT (month) DO NOTHING"
	res, err := tx.ExecContext(ctx, mark, now.UTC(), key)
	if err != nil {
		return fmt.Errorf("kpi rollup: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // rolled already
	}
	sum, dot, flag := d.storedSum, d.storedDot, d.flag
	for _, q := range []string{
		`INSERT INTO kpi_entry_months (organization_id, month, kind, credit_type, event, negative, credits, value)
SELECT le.organization_id, ` + d.p(3) + `, le.kind, COALESCE(g.credit_type, ''), ` + flag("le.usage_event_id IS NOT NULL") + `,
  ` + flag(d.negative("le.amount")) + `, ` + sum("le.amount") + `, ` + dot("le.amount", "g.unit_price") + `
FROM ledger_entries le LEFT JOIN grants g ON g.id = le.grant_id
WHERE le.created_at >= ` + d.p(1) + ` AND le.created_at < ` + d.p(2) + `
GROUP BY le.organization_id, le.kind, COALESCE(g.credit_type, ''), ` + flag("le.usage_event_id IS NOT NULL") + `, ` + flag(d.negative("le.amount")),
		`INSERT INTO kpi_usage_months (organization_id, month, events, value, cost)
SELECT ue.organization_id, ` + d.p(3) + `, COUNT(*), ` + dot("w.value_per_action", "ue.quantity") + `, ` + dot("w.cost_per_action", "ue.quantity") + `
FROM usage_events ue LEFT JOIN weights w ON w.register_id = ue.register_id AND w.action = ue.action
WHERE ue.created_at >= ` + d.p(1) + ` AND ue.created_at < ` + d.p(2) + ` AND ` + d.charged() + `
GROUP BY ue.organization_id`,
	} {
		if _, err := tx.ExecContext(ctx, q, m, end, key); err != nil {
			return fmt.Errorf("kpi rollup of %s: %w", key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("kpi rollup: %w", err)
	}
	return nil
}

// storedSum and storedDot are exact sums in the column's own type
// (numeric on PostgreSQL, text on SQLite).
func (d sqlDialect) storedSum(expr string) string {
	if d.pg {
		return "COALESCE(SUM(" + expr + "), 0)"
	}
	return d.sum(expr)
}

func (d sqlDialect) storedDot(a, b string) string {
	if d.pg {
		return "COALESCE(SUM((" + a + ") * (" + b + ")), 0)"
	}
	return d.dot(a, b)
}

// flag is a boolean column's value of a condition.
func (d sqlDialect) flag(cond string) string {
	if d.pg {
		return "(" + cond + ")"
	}
	return d.isTrue(cond)
}

// charged is whether a usage event charged credits.
func (d sqlDialect) charged() string {
	if d.pg {
		return "ue.credits > 0"
	}
	return "ue.credits NOT IN ('0', '') AND substr(ue.credits, 1, 1) <> '-'"
}

// in is " IN (p_from, ...)" for n values bound from placeholder from on.
func (d sqlDialect) in(from, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = d.p(from + i)
	}
	return " IN (" + strings.Join(ps, ", ") + ")"
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// rolledEntries reads the entry rollups of months.
func rolledEntries(ctx context.Context, db *store.DB, months []string) ([]entryFlow, error) {
	if len(months) == 0 {
		return nil, nil
	}
	d := dialectOf(db)
	asInt := func(col string) string {
		if d.pg {
			return col + "::int"
		}
		return col
	}
	q := `SELECT organization_id, month, kind, credit_type, ` + asInt("event") + `, ` + asInt("negative") + `, credits, value
FROM kpi_entry_months WHERE month` + d.in(1, len(months))
	var out []entryFlow
	err := each(ctx, db, q, strs(months), func(rows *sql.Rows) error {
		f, err := scanFlow(rows)
		out = append(out, f)
		return err
	})
	return out, err
}

// rolledUsage reads the usage rollups of months.
func rolledUsage(ctx context.Context, db *store.DB, months []string) ([]eventValue, error) {
	if len(months) == 0 {
		return nil, nil
	}
	d := dialectOf(db)
	q := `SELECT organization_id, month, events, value, cost FROM kpi_usage_months WHERE month` + d.in(1, len(months))
	var out []eventValue
	err := each(ctx, db, q, strs(months), func(rows *sql.Rows) error {
		e, err := scanEvents(rows)
		out = append(out, e)
		return err
	})
	return out, err
}

// scanFlow reads organisation, month, kind, credit type, event and sign
// flags (0/1), credits and value.
func scanFlow(rows *sql.Rows) (entryFlow, error) {
	var (
		f          entryFlow
		ev, neg    int
		cred, valS string
	)
	if err := rows.Scan(&f.org, &f.month, &f.kind, &f.ctype, &ev, &neg, &cred, &valS); err != nil {
		return f, err
	}
	f.event, f.neg = ev == 1, neg == 1
	var err error
	if f.credits, err = decimal.NewFromString(cred); err == nil {
		f.val, err = decimal.NewFromString(valS)
	}
	return f, err
}

// scanEvents reads organisation, month, events, value and cost.
func scanEvents(rows *sql.Rows) (eventValue, error) {
	var (
		e          eventValue
		vals, cost string
	)
	if err := rows.Scan(&e.org, &e.month, &e.events, &vals, &cost); err != nil {
		return e, err
	}
	var err error
	if e.value, err = decimal.NewFromString(vals); err == nil {
		e.cost, err = decimal.NewFromString(cost)
	}
	return e, err
}
