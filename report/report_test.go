package report_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/report"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// describe writes rows as "key key ... credits/refunded events/entries",
// one per line, with pools by name.
func (f *fixture) describe(rows []report.SummaryRow) string {
	names := map[int]string{f.main: "main", f.team: "team", f.otherPool: "other"}
	var b strings.Builder
	for _, r := range rows {
		if r.PoolID != nil {
			b.WriteString(names[*r.PoolID] + " ")
		}
		if r.Action != nil {
			b.WriteString(*r.Action + " ")
		}
		if r.CreditType != nil {
			b.WriteString(*r.CreditType + " ")
		}
		if r.Period != nil {
			b.WriteString(r.Period.Format(time.DateOnly) + " ")
		}
		b.WriteString(r.Credits.String() + "/" + r.Refunded.String() + " " + strconv.Itoa(r.Events) + "/" + strconv.Itoa(r.Entries) + "\n")
	}
	return b.String()
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func TestSummary(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		q := func(mod func(*report.SummaryQuery)) report.SummaryQuery {
			sq := report.SummaryQuery{OrganizationID: f.org, From: from, To: to}
			mod(&sq)
			return sq
		}
		cases := []struct {
			name string
			q    report.SummaryQuery
			want string
		}{
			{"action and day", q(func(q *report.SummaryQuery) { q.GroupBy = []report.GroupBy{report.ByAction, report.ByDay} }), lines(
				"=1+2 2026-12-01 1/0 1/1",
				"agent.run 2026-11-23 3/0 3/3",
				"agent.run 2026-11-24 1/0 1/1",
				"big.run 2026-11-23 10/0 1/1",
				"big.run 2026-11-24 20/4 2/3",
				"fraction.run 2026-11-23 0.3/0 3/3")},
			{"week, from Monday", q(func(q *report.SummaryQuery) { q.GroupBy = []report.GroupBy{report.ByWeek} }), lines(
				"2026-11-23 34.3/4 10/11",
				"2026-11-30 1/0 1/1")},
			{"month then pool", q(func(q *report.SummaryQuery) { q.GroupBy = []report.GroupBy{report.ByMonth, report.ByPool} }), lines(
				"main 2026-11-01 33/4 6/7",
				"team 2026-11-01 1.3/0 4/4",
				"main 2026-12-01 1/0 1/1")},
			{"credit type", q(func(q *report.SummaryQuery) { q.GroupBy = []report.GroupBy{report.ByCreditType} }), lines(
				"PROMOTIONAL 1.3/0 4/4",
				"SUBSCRIPTION 34/4 7/8")},
			{"no grouping: the total", q(func(*report.SummaryQuery) {}), lines("35.3/4 11/12")},
			{"pool filter", q(func(q *report.SummaryQuery) {
				q.GroupBy, q.PoolIDs = []report.GroupBy{report.ByAction}, []int{f.team}
			}), lines("agent.run 1/0 1/1", "fraction.run 0.3/0 3/3")},
			{"action filter", q(func(q *report.SummaryQuery) { q.Actions = []string{"big.run", "fraction.run"} }), lines("30.3/4 6/7")},
			{"credit type filter", q(func(q *report.SummaryQuery) { q.CreditTypes = []string{"PROMOTIONAL"} }), lines("1.3/0 4/4")},
			{"the range bounds created_at", q(func(q *report.SummaryQuery) {
				q.From, q.To, q.GroupBy = day2, day2.Add(11*time.Hour), []report.GroupBy{report.ByAction}
			}), lines("agent.run 1/0 1/1", "big.run 20/0 2/2")},
			{"another organisation's pool shows nothing", q(func(q *report.SummaryQuery) { q.PoolIDs = []int{f.otherPool} }), ""},
			{"the other organisation", report.SummaryQuery{OrganizationID: f.other, From: from, To: to,
				GroupBy: []report.GroupBy{report.ByPool, report.ByAction}}, lines("other big.run 50/0 5/5")},
		}
		for _, tc := range cases {
			rows, err := report.Summary(context.Background(), db, tc.q)
			if err != nil {
				t.Fatalf("%s: Summary: %v", tc.name, err)
			}
			if got := f.describe(rows); got != tc.want {
				t.Errorf("%s: Summary =\n%s\nwant\n%s", tc.name, got, tc.want)
			}
		}
	})
}

// Overage has no grant: its credit type is reported as OVERAGE.
func TestSummaryOverage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		p, err := f.svc.CreatePlan(ctx, ledger.PlanInput{Name: "soft", Period: credit.PeriodMonth, IncludedCredits: d("15"),
			PricePerCredit: d("0.01"), PlatformFee: d("0"), RegisterName: "default", OverageMode: credit.OverageSoft,
			OveragePrice: ptr(d("0.02")), RolloverMode: credit.RolloverNone})
		must(t, err)
		org, pool := f.organization(t, "Soft")
		_, err = f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: org, PlanID: p.ID, StartsAt: f.clock.now()})
		must(t, err)
		f.use(t, org, pool, "big.run", 2) // 15 included, 5 over
		rows, err := report.Summary(ctx, db, report.SummaryQuery{OrganizationID: org, From: from, To: to,
			GroupBy: []report.GroupBy{report.ByCreditType}})
		must(t, err)
		if got, want := f.describe(rows), lines("OVERAGE 5/0 1/1", "SUBSCRIPTION 15/0 2/2"); got != want {
			t.Errorf("Summary by credit type =\n%s\nwant\n%s", got, want)
		}
	})
}

func TestSummaryTooManyRows(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		defer report.SetLimits(5000, 5)()
		q := report.SummaryQuery{OrganizationID: f.org, From: from, To: to, GroupBy: []report.GroupBy{report.ByAction, report.ByDay}}
		if _, err := report.Summary(context.Background(), db, q); credit.CodeOf(err) != credit.CodeValidation {
			t.Fatalf("Summary of 6 groups with a limit of 5 = %v, want VALIDATION", err)
		}
		q.GroupBy = []report.GroupBy{report.ByAction}
		if rows, err := report.Summary(context.Background(), db, q); err != nil || len(rows) != 4 {
			t.Fatalf("Summary of 4 groups = %d rows, %v; want 4", len(rows), err)
		}
	})
}

func TestValidation(t *testing.T) {
	db := testdb.Open(t, dialect.SQLite) // validation reads nothing: one dialect is enough
	ctx := context.Background()
	ok := report.SummaryQuery{OrganizationID: 1, From: from, To: to}
	with := func(mod func(*report.SummaryQuery)) report.SummaryQuery { q := ok; mod(&q); return q }
	year := from.AddDate(1, 0, 2)
	summaries := []struct {
		q     report.SummaryQuery
		field string
	}{
		{with(func(q *report.SummaryQuery) { q.OrganizationID = 0 }), "organizationId"},
		{with(func(q *report.SummaryQuery) { q.From = time.Time{} }), "from"},
		{with(func(q *report.SummaryQuery) { q.To = q.From }), "to"},
		{with(func(q *report.SummaryQuery) { q.To = year }), "to"},
		{with(func(q *report.SummaryQuery) { q.GroupBy = []report.GroupBy{"YEAR"} }), "groupBy"},
		{with(func(q *report.SummaryQuery) { q.GroupBy = []report.GroupBy{report.ByDay, report.ByWeek} }), "groupBy"},
		{with(func(q *report.SummaryQuery) { q.GroupBy = []report.GroupBy{report.ByPool, report.ByPool} }), "groupBy"},
		{with(func(q *report.SummaryQuery) { q.CreditTypes = []string{"GOLD"} }), "creditTypes"},
		{with(func(q *report.SummaryQuery) { q.PoolIDs = []int{-1} }), "poolIds"},
		{with(func(q *report.SummaryQuery) { q.Actions = []string{""} }), "actions"},
		{with(func(q *report.SummaryQuery) { q.PoolIDs = make([]int, report.MaxFilterValues+1) }), "poolIds"},
	}
	for i, tc := range summaries {
		_, err := report.Summary(ctx, db, tc.q)
		checkInvalid(t, "Summary case "+strconv.Itoa(i), err, tc.field)
	}
	f := report.EntryFilter{OrganizationID: 1, From: &from, To: &to}
	_, _, err := report.Entries(ctx, db, f, 0, 0)
	checkInvalid(t, "Entries(first 0)", err, "first")
	_, _, err = report.Entries(ctx, db, f, report.MaxPage+1, 0)
	checkInvalid(t, "Entries(first MaxPage+1)", err, "first")
	_, _, err = report.Entries(ctx, db, report.EntryFilter{OrganizationID: 1, Kinds: []string{"STEAL"}}, 10, 0)
	checkInvalid(t, "Entries(kind STEAL)", err, "kinds")
	_, _, err = report.Events(ctx, db, report.EventFilter{OrganizationID: 1, Status: ptr("DONE")}, 10, 0)
	checkInvalid(t, "Events(status DONE)", err, "status")
	_, _, err = report.Events(ctx, db, report.EventFilter{}, 10, 0)
	checkInvalid(t, "Events(no organisation)", err, "organizationId")
	_, err = report.ExportLedgerCSV(ctx, db, report.EntryFilter{OrganizationID: 1, To: &to}, &strings.Builder{})
	checkInvalid(t, "ExportLedgerCSV(no from)", err, "from")
	_, err = report.ExportUsageCSV(ctx, db, report.EventFilter{OrganizationID: 1, From: &from, To: &year}, &strings.Builder{})
	checkInvalid(t, "ExportUsageCSV(over MaxExportDays)", err, "to")
}

func checkInvalid(t *testing.T, what string, err error, field string) {
	t.Helper()
	var e *credit.Error
	if !errors.As(err, &e) || e.Code != credit.CodeValidation || e.Field != field {
		t.Errorf("%s = %v, want VALIDATION on %q", what, err, field)
	}
}
