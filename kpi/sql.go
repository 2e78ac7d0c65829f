package kpi

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"entgo.io/ent/dialect"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/report"
	"github.com/creditd/creditd/store"
)

// The aggregate statements. Each groups by organisation and UTC month (as
// 'YYYY-MM' text on both dialects) and returns sums as text, so Go reads
// exact decimals; none returns a ledger row.

// sqlDialect writes the dialect's pieces.
type sqlDialect struct{ pg bool }

func dialectOf(db *store.DB) sqlDialect { return sqlDialect{pg: db.Dialect == dialect.Postgres} }

// p is the n-th placeholder.
func (d sqlDialect) p(n int) string {
	if d.pg {
		return "$" + strconv.Itoa(n)
	}
	return "?" + strconv.Itoa(n)
}

// month is the UTC month of a time column, 'YYYY-MM'. SQLite stores times
// as UTC text beginning with the date.
func (d sqlDialect) month(col string) string {
	if d.pg {
		return "to_char(" + col + " AT TIME ZONE 'UTC', 'YYYY-MM')"
	}
	return "substr(" + col + ", 1, 7)"
}

// negative is whether a decimal column is below zero (text on SQLite).
func (d sqlDialect) negative(col string) string {
	if d.pg {
		return "(" + col + " < 0)"
	}
	return "(substr(" + col + ", 1, 1) = '-')"
}

func (d sqlDialect) sum(expr string) string    { return report.Sum(d.pg, expr) }
func (d sqlDialect) dot(a, b string) string    { return report.SumProduct(d.pg, a, b) }
func (d sqlDialect) isTrue(expr string) string { return "CASE WHEN " + expr + " THEN 1 ELSE 0 END" }

// utcArgs binds times in UTC: SQLite compares them as text, which is in
// time order only within one zone.
func utcArgs(ts ...time.Time) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t.UTC()
	}
	return out
}

// entryFlow is one group of ledger entries: an organisation, a month, an
// entry kind and credit type, whether they name a usage event and their
// sign, with the credits and their unit-price value.
type entryFlow struct {
	org          int
	month        string
	kind, ctype  string
	event, neg   bool
	credits, val decimal.Decimal
}

// entryFlows sums the entries written in a range split into pieces: the
// rollups of its whole closed months, the ledger for the rest.
func entryFlows(ctx context.Context, db *store.DB, ps pieces) ([]entryFlow, error) {
	out, err := rolledEntries(ctx, db, ps.months)
	for _, r := range ps.raw {
		if err != nil {
			break
		}
		var more []entryFlow
		more, err = entryFlowsRaw(ctx, db, r[0], r[1])
		out = append(out, more...)
	}
	return out, err
}

// entryFlowsRaw sums the ledger's entries written in [from, to).
func entryFlowsRaw(ctx context.Context, db *store.DB, from, to time.Time) ([]entryFlow, error) {
	d := dialectOf(db)
	q := `SELECT le.organization_id, ` + d.month("le.created_at") + `, le.kind, COALESCE(g.credit_type, ''),
  ` + d.isTrue("le.usage_event_id IS NOT NULL") + `, ` + d.isTrue(d.negative("le.amount")) + `,
  ` + d.sum("le.amount") + `, ` + d.dot("le.amount", "g.unit_price") + `
FROM ledger_entries le LEFT JOIN grants g ON g.id = le.grant_id
WHERE le.created_at >= ` + d.p(1) + ` AND le.created_at < ` + d.p(2) + `
GROUP BY 1, 2, 3, 4, 5, 6`
	var out []entryFlow
	err := each(ctx, db, q, utcArgs(from, to), func(rows *sql.Rows) error {
		f, err := scanFlow(rows)
		out = append(out, f)
		return err
	})
	return out, err
}

// liabilityAt is each organisation's deferred liability at the end of
// the range split into ps (from the ledger's first entry): the unit price
// value of every entry before it but holds and their releases.
func liabilityAt(ctx context.Context, db *store.DB, ps pieces) (map[int]decimal.Decimal, error) {
	out := map[int]decimal.Decimal{}
	d := dialectOf(db)
	add := func(rows *sql.Rows) error {
		var (
			org int
			v   string
		)
		if err := rows.Scan(&org, &v); err != nil {
			return err
		}
		x, err := decimal.NewFromString(v)
		out[org] = out[org].Add(x)
		return err
	}
	if len(ps.months) > 0 {
		q := `SELECT organization_id, ` + d.sum("value") + ` FROM kpi_entry_months
WHERE kind NOT IN ('HOLD', 'RELEASE') AND month` + d.in(1, len(ps.months)) + ` GROUP BY 1`
		if err := each(ctx, db, q, strs(ps.months), add); err != nil {
			return nil, err
		}
	}
	for _, r := range ps.raw {
		q := `SELECT le.organization_id, ` + d.dot("le.amount", "g.unit_price") + `
FROM ledger_entries le JOIN grants g ON g.id = le.grant_id
WHERE le.created_at >= ` + d.p(1) + ` AND le.created_at < ` + d.p(2) + ` AND le.kind NOT IN ('HOLD', 'RELEASE')
GROUP BY 1`
		if err := each(ctx, db, q, utcArgs(r[0], r[1]), add); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// eventValue is one organisation-month of charged usage: the value and
// cost the register versions that priced it put on its actions.
type eventValue struct {
	org         int
	month       string
	events      int
	value, cost decimal.Decimal
}

// eventValues sums the events recorded in a range split into pieces that
// charged credits: the rollups of its whole closed months, the ledger for
// the rest.
func eventValues(ctx context.Context, db *store.DB, ps pieces) ([]eventValue, error) {
	out, err := rolledUsage(ctx, db, ps.months)
	for _, r := range ps.raw {
		if err != nil {
			break
		}
		var more []eventValue
		more, err = eventValuesRaw(ctx, db, r[0], r[1])
		out = append(out, more...)
	}
	return out, err
}

// eventValuesRaw sums the events recorded in [from, to) that charged credits.
func eventValuesRaw(ctx context.Context, db *store.DB, from, to time.Time) ([]eventValue, error) {
	d := dialectOf(db)
	charged := d.charged()
	q := `SELECT ue.organization_id, ` + d.month("ue.created_at") + `, COUNT(*),
  ` + d.dot("w.value_per_action", "ue.quantity") + `, ` + d.dot("w.cost_per_action", "ue.quantity") + `
FROM usage_events ue LEFT JOIN weights w ON w.register_id = ue.register_id AND w.action = ue.action
WHERE ue.created_at >= ` + d.p(1) + ` AND ue.created_at < ` + d.p(2) + ` AND ` + charged + `
GROUP BY 1, 2`
	var out []eventValue
	err := each(ctx, db, q, utcArgs(from, to), func(rows *sql.Rows) error {
		e, err := scanEvents(rows)
		out = append(out, e)
		return err
	})
	return out, err
}

// chargeFlow is one group of charges: organisation, month, kind,
// currency, sign.
type chargeFlow struct {
	org             int
	month           string
	kind, currency  string
	neg             bool
	credits, amount decimal.Decimal
}

// chargeFlows sums the charges billed in [from, to).
func chargeFlows(ctx context.Context, db *store.DB, from, to time.Time) ([]chargeFlow, error) {
	d := dialectOf(db)
	q := `SELECT organization_id, ` + d.month("created_at") + `, kind, currency, ` + d.isTrue(d.negative("amount")) + `,
  ` + d.sum("credits") + `, ` + d.sum("amount") + `
FROM charges WHERE created_at >= ` + d.p(1) + ` AND created_at < ` + d.p(2) + `
GROUP BY 1, 2, 3, 4, 5`
	var out []chargeFlow
	err := each(ctx, db, q, utcArgs(from, to), func(rows *sql.Rows) error {
		var (
			c        chargeFlow
			neg      int
			cred, am string
		)
		if err := rows.Scan(&c.org, &c.month, &c.kind, &c.currency, &neg, &cred, &am); err != nil {
			return err
		}
		c.neg = neg == 1
		var err error
		if c.credits, err = decimal.NewFromString(cred); err == nil {
			c.amount, err = decimal.NewFromString(am)
		}
		out = append(out, c)
		return err
	})
	return out, err
}

// each runs q and calls scan for every row.
func each(ctx context.Context, db *store.DB, q string, args []any, scan func(*sql.Rows) error) error {
	if db.Dialect != dialect.Postgres {
		if err := report.Ready(); err != nil {
			return fmt.Errorf("kpi: %w", err)
		}
	}
	rows, err := db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("kpi: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("kpi: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("kpi: %w", err)
	}
	return nil
}
