package kpi

import (
	"context"
	"database/sql"
	"encoding/csv"
	"io"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/store"
)

// Revenue recognition for finance, at the unit prices paid.
//
// RollForward: per UTC month, Closing = Opening + Billed - Recognised -
// Breakage - Refunds + Other, exactly, where Billed is the value of new
// grants (GRANT entries), Recognised of burns, Breakage of expiries,
// Refunds what refunds took out net (credits bought back, term-end
// refunds, less credits given back for usage), Other every other move
// (rollovers, transfers, plan-change adjustments, voids: they net to what
// they change in unit price).

// RollForward is one month of the deferred credit liability.
type RollForward struct {
	Month                                   time.Time
	Opening, Billed, Recognised, Breakage   decimal.Decimal
	Refunds, Other, Closing, OverageRevenue decimal.Decimal
}

// BreakageCohort is what expired in a month of the credits granted in
// another (the purchase cohort), by credit type.
type BreakageCohort struct {
	Cohort, Month  time.Time
	CreditType     string
	Credits, Value decimal.Decimal
}

// Revenue is the roll-forward and the breakage cohorts of a range in one
// currency.
type Revenue struct {
	Currency string
	Months   []RollForward
	Breakage []BreakageCohort
}

// RevenueRecognition computes the roll-forward of [from, to) and the
// breakage by cohort.
func RevenueRecognition(ctx context.Context, db *store.DB, q Query) (Revenue, error) {
	q.GroupBy = nil
	if q.Currency == "" {
		q.Currency = "USD"
	}
	if err := q.Validate(); err != nil {
		return Revenue{}, err
	}
	q.From, q.To = q.From.UTC(), q.To.UTC()
	b, err := loadBook(ctx, db.Client)
	if err != nil {
		return Revenue{}, err
	}
	past, err := history(ctx, db, q.From, q.now())
	if err != nil {
		return Revenue{}, err
	}
	rng, err := split(ctx, db, q.From, q.To, q.now())
	if err != nil {
		return Revenue{}, err
	}
	entries, err := entryFlows(ctx, db, rng)
	if err != nil {
		return Revenue{}, err
	}
	charges, err := chargeFlows(ctx, db, q.From, q.To)
	if err != nil {
		return Revenue{}, err
	}
	open, err := liabilityAt(ctx, db, past)
	if err != nil {
		return Revenue{}, err
	}
	f := &folder{q: q, b: b}
	out := Revenue{Currency: q.Currency, Months: f.rollForward(open, entries, charges)}
	out.Breakage, err = breakageCohorts(ctx, db, f)
	return out, err
}

// rollForward folds the range's entries and overage charges into months,
// each opening at the last's closing (the first at the liability open
// sums to).
func (f *folder) rollForward(open map[int]decimal.Decimal, entries []entryFlow, charges []chargeFlow) []RollForward {
	q := f.q
	var out []RollForward
	months, _ := f.monthEnds()
	byMonth := map[string]*RollForward{}
	opening := decimal.Zero
	for org, v := range open {
		if f.inCurrency(org) {
			opening = opening.Add(v)
		}
	}
	for _, m := range months {
		t, _ := monthStart(m)
		byMonth[m] = &RollForward{Month: t}
	}
	for _, e := range entries {
		r := byMonth[e.month]
		if r == nil || !f.inCurrency(e.org) {
			continue
		}
		switch credit.EntryKind(e.kind) {
		case credit.EntryHold, credit.EntryRelease:
		case credit.EntryGrant:
			if e.event {
				r.Refunds = r.Refunds.Sub(e.val)
			} else {
				r.Billed = r.Billed.Add(e.val)
			}
		case credit.EntryBurn:
			r.Recognised = r.Recognised.Sub(e.val)
		case credit.EntryExpire:
			r.Breakage = r.Breakage.Sub(e.val)
		case credit.EntryRefund:
			r.Refunds = r.Refunds.Sub(e.val)
		default:
			r.Other = r.Other.Add(e.val)
		}
	}
	for _, c := range charges {
		if r := byMonth[c.month]; r != nil && c.kind == "OVERAGE" && c.currency == q.Currency && f.inCurrency(c.org) {
			r.OverageRevenue = r.OverageRevenue.Add(c.amount)
		}
	}
	for _, m := range months {
		r := byMonth[m]
		r.Opening = opening
		r.Closing = opening.Add(r.Billed).Sub(r.Recognised).Sub(r.Breakage).Sub(r.Refunds).Add(r.Other)
		opening = r.Closing
		out = append(out, *r)
	}
	return out
}

// breakageCohorts groups the range's expiries by the month their grant
// was created and the month they expired.
func breakageCohorts(ctx context.Context, db *store.DB, f *folder) ([]BreakageCohort, error) {
	d := dialectOf(db)
	q := `SELECT le.organization_id, ` + d.month("g.created_at") + `, ` + d.month("le.created_at") + `, g.credit_type,
  ` + d.sum("le.amount") + `, ` + d.dot("le.amount", "g.unit_price") + `
FROM ledger_entries le JOIN grants g ON g.id = le.grant_id
WHERE le.kind = 'EXPIRE' AND le.created_at >= ` + d.p(1) + ` AND le.created_at < ` + d.p(2) + `
GROUP BY 1, 2, 3, 4 ORDER BY 2, 3, 4`
	type key struct{ cohort, month, ctype string }
	sums := map[key]*BreakageCohort{}
	var order []key
	err := each(ctx, db, q, utcArgs(f.q.From, f.q.To), func(rows *sql.Rows) error {
		var (
			org            int
			k              key
			credits, value string
		)
		if err := rows.Scan(&org, &k.cohort, &k.month, &k.ctype, &credits, &value); err != nil {
			return err
		}
		if !f.inCurrency(org) {
			return nil
		}
		c, err := decimal.NewFromString(credits)
		if err != nil {
			return err
		}
		v, err := decimal.NewFromString(value)
		if err != nil {
			return err
		}
		s := sums[k]
		if s == nil {
			cohort, err := monthStart(k.cohort)
			if err != nil {
				return err
			}
			month, err := monthStart(k.month)
			if err != nil {
				return err
			}
			s = &BreakageCohort{Cohort: cohort, Month: month, CreditType: k.ctype}
			sums[k] = s
			order = append(order, k)
		}
		s.Credits, s.Value = s.Credits.Sub(c), s.Value.Sub(v)
		return nil
	})
	out := make([]BreakageCohort, len(order))
	for i, k := range order {
		out[i] = *sums[k]
	}
	return out, err
}

// Journal writes the entries a general ledger imports, as CSV: one line
// per period, account and cause, amounts on the debit or the credit side.
//
//	BILLED      Dr credits_billed_clearing      Cr deferred_credit_revenue
//	RECOGNISED  Dr deferred_credit_revenue      Cr credit_usage_revenue
//	BREAKAGE    Dr deferred_credit_revenue      Cr breakage_revenue
//	REFUND      Dr deferred_credit_revenue      Cr refunds_payable
//	OTHER       Dr deferred_credit_adjustments  Cr deferred_credit_revenue
//	OVERAGE     Dr accounts_receivable          Cr overage_revenue
//
// A negative amount swaps the sides.
func Journal(w io.Writer, r Revenue) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"period", "account", "cause", "debit", "credit", "currency"}); err != nil {
		return err
	}
	for _, m := range r.Months {
		period := m.Month.Format("2006-01")
		for _, l := range []struct {
			cause, debit, credit string
			amount               decimal.Decimal
		}{
			{"BILLED", "credits_billed_clearing", "deferred_credit_revenue", m.Billed},
			{"RECOGNISED", "deferred_credit_revenue", "credit_usage_revenue", m.Recognised},
			{"BREAKAGE", "deferred_credit_revenue", "breakage_revenue", m.Breakage},
			{"REFUND", "deferred_credit_revenue", "refunds_payable", m.Refunds},
			{"OTHER", "deferred_credit_adjustments", "deferred_credit_revenue", m.Other},
			{"OVERAGE", "accounts_receivable", "overage_revenue", m.OverageRevenue},
		} {
			if l.amount.IsZero() {
				continue
			}
			debit, credit, amount := l.debit, l.credit, l.amount
			if amount.IsNegative() {
				debit, credit, amount = credit, debit, amount.Neg()
			}
			if err := cw.Write([]string{period, debit, l.cause, amount.String(), "", r.Currency}); err != nil {
				return err
			}
			if err := cw.Write([]string{period, credit, l.cause, "", amount.String(), r.Currency}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
