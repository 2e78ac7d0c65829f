package report_test

import (
	"context"
	"slices"
	"testing"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/ent/usageevent"
	"github.com/creditd/creditd/report"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// pages reads every page of a listing, n rows at a time, and fails when
// a page is over-full or hasNext is wrong.
func pages[T any](t *testing.T, n int, list func(first, after int) ([]T, bool, error), id func(T) int) []int {
	t.Helper()
	var ids []int
	for after := 0; ; {
		rows, more, err := list(n, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) > n || more && len(rows) < n {
			t.Fatalf("page after %d: %d rows, hasNext %v; want at most %d (exactly %d with hasNext)", after, len(rows), more, n, n)
		}
		for _, r := range rows {
			ids = append(ids, id(r))
		}
		if !more {
			return ids
		}
		after = ids[len(ids)-1]
	}
}

func TestKeysetPagination(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		for _, org := range []int{f.org, f.other} {
			want, err := db.Client.LedgerEntry.Query().Where(ledgerentry.OrganizationID(org)).Order(ent.Desc(ledgerentry.FieldID)).IDs(ctx)
			must(t, err)
			for _, n := range []int{1, 4, len(want), report.MaxPage} {
				got := pages(t, n, func(first, after int) ([]report.EntryRow, bool, error) {
					return report.Entries(ctx, db, report.EntryFilter{OrganizationID: org}, first, after)
				}, func(r report.EntryRow) int { return r.ID })
				if !slices.Equal(got, want) {
					t.Errorf("Entries of org %d by pages of %d = %v, want every entry once, newest first: %v", org, n, got, want)
				}
			}
			wantEv, err := db.Client.UsageEvent.Query().Where(usageevent.OrganizationID(org)).Order(ent.Desc(usageevent.FieldID)).IDs(ctx)
			must(t, err)
			got := pages(t, 5, func(first, after int) ([]report.EventRow, bool, error) {
				return report.Events(ctx, db, report.EventFilter{OrganizationID: org}, first, after)
			}, func(r report.EventRow) int { return r.ID })
			if !slices.Equal(got, wantEv) {
				t.Errorf("Events of org %d by pages of 5 = %v, want %v", org, got, wantEv)
			}
		}
	})
}

func TestEntryFilters(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		big, burn := "big.run", []string{string(credit.EntryBurn)}
		cases := []struct {
			name   string
			filter report.EntryFilter
			want   []string // "KIND amount action", newest first
		}{
			{"burns of an action", report.EntryFilter{Kinds: burn, Action: &big}, []string{"BURN -10 big.run", "BURN -10 big.run", "BURN -10 big.run"}},
			{"a grant", report.EntryFilter{GrantID: &f.promo.ID}, []string{"BURN -1 agent.run", "BURN -0.1 fraction.run",
				"BURN -0.1 fraction.run", "BURN -0.1 fraction.run", "GRANT 20 "}},
			{"a pool and kinds", report.EntryFilter{PoolID: &f.main, Kinds: []string{"REFUND", "GRANT"}}, []string{"REFUND 4 big.run", "GRANT 100 "}},
			{"a run", report.EntryFilter{RunID: ptr(evilRun), Kinds: burn}, []string{"BURN -1 =1+2"}},
			{"a status", report.EntryFilter{Status: ptr("STARTED")}, []string{"HOLD -1 =1+2"}},
			{"a day", report.EntryFilter{From: &day2, To: &day3, Kinds: burn}, []string{"BURN -1 agent.run", "BURN -10 big.run", "BURN -10 big.run"}},
			{"another organisation's pool", report.EntryFilter{PoolID: &f.otherPool}, nil},
		}
		for _, tc := range cases {
			tc.filter.OrganizationID = f.org
			rows, more, err := report.Entries(context.Background(), db, tc.filter, report.MaxPage, 0)
			if err != nil || more {
				t.Fatalf("%s: Entries = %v, hasNext %v", tc.name, err, more)
			}
			var got []string
			for _, r := range rows {
				got = append(got, string(r.Kind)+" "+r.Amount.String()+" "+r.Action)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: Entries = %q, want %q", tc.name, got, tc.want)
			}
		}
		rows, _, err := report.Entries(context.Background(), db, report.EntryFilter{OrganizationID: f.org, Kinds: []string{"REFUND"}}, 1, 0)
		if err != nil || len(rows) != 1 || rows[0].UsageEventID == nil || *rows[0].UsageEventID != f.refunded.ID || rows[0].GrantID == nil ||
			*rows[0].GrantID != f.sub.ID || rows[0].RegisterVersion != nil || rows[0].Status != credit.StatusSucceeded {
			t.Errorf("the refund entry = %+v, %v; want it to name its event %d and grant %d, and its event's status", rows, err, f.refunded.ID, f.sub.ID)
		}
	})
}

func TestEventFilters(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		cases := []struct {
			name   string
			filter report.EventFilter
			want   []string // "action status credits", newest first
		}{
			{"an action", report.EventFilter{Action: ptr("big.run")}, []string{"big.run SUCCEEDED 10", "big.run SUCCEEDED 10", "big.run SUCCEEDED 10"}},
			{"a run", report.EventFilter{RunID: ptr(evilRun)}, []string{"=1+2 SUCCEEDED 1", "=1+2 STARTED 0"}},
			{"a status", report.EventFilter{Status: ptr("STARTED")}, []string{"=1+2 STARTED 0"}},
			{"a pool and a range", report.EventFilter{PoolID: &f.team, From: &day2}, []string{"agent.run SUCCEEDED 1"}},
			{"another organisation's pool", report.EventFilter{PoolID: &f.otherPool}, nil},
		}
		for _, tc := range cases {
			tc.filter.OrganizationID = f.org
			rows, _, err := report.Events(context.Background(), db, tc.filter, report.MaxPage, 0)
			must(t, err)
			var got []string
			for _, r := range rows {
				got = append(got, r.Action+" "+string(r.Status)+" "+r.Credits.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: Events = %q, want %q", tc.name, got, tc.want)
			}
		}
	})
}
