package ledger_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// verifyFixture records some usage: single events, a denied one, a settled
// run and an open one.
func verifyFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := setup(t, db)
	f.grant(t, "50", credit.CreditSubscription)
	if _, err := f.svc.SetBudget(ctx, f.pool.ID, d("1000"), credit.PeriodMonth, false); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := f.svc.RecordUsage(ctx, f.usage(fmt.Sprintf("k%d", i), "agent.run")); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := f.svc.RecordUsage(ctx, f.usage("too-big", "big.run")); err != nil || res.Decision != credit.DecisionAllowed {
		t.Fatalf("big.run: %+v %v", res, err)
	}
	big := d("100")
	in := f.usage("denied", "agent.run")
	in.Quantity = &big
	if res, err := f.svc.RecordUsage(ctx, in); err != nil || res.Decision != credit.DecisionDenied {
		t.Fatalf("denied: %+v %v", res, err)
	}
	for _, run := range []struct {
		id     string
		status []credit.UsageStatus
	}{{"run-1", []credit.UsageStatus{credit.StatusStarted, credit.StatusSucceeded}}, {"run-2", []credit.UsageStatus{credit.StatusStarted}}} {
		for _, st := range run.status {
			in := f.usage(run.id+"-"+string(st), "agent.run")
			in.RunID, in.Status = run.id, st
			if _, err := f.svc.RecordUsage(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

// TestVerifyFindsEachViolation breaks a healthy ledger behind the
// service's back (raw SQL, as a bug or a hand edit would) in one way at a
// time, and checks that Verify names that invariant, with pages small
// enough that every pass turns pages.
func TestVerifyFindsEachViolation(t *testing.T) {
	defer ledger.SetVerifyPage(3)()
	cases := []struct {
		name, sql, invariant string
	}{
		{"credits from nowhere", `UPDATE grants SET remaining = '51'`, "grant balance"},
		{"remaining past its amount", `UPDATE grants SET remaining = '1000', amount = '1000'`, "grant entry"},
		{"an event charged twice", `UPDATE usage_events SET credits = '2' WHERE idempotency_key = 'k3'`, "burn total"},
		{"a denial that charged", `UPDATE usage_events SET credits = '1' WHERE idempotency_key = 'denied'`, "denied burn"},
		{"an event without its versions", `UPDATE usage_events SET register_id = NULL, register_version = NULL WHERE idempotency_key = 'k1'`, "event versions"},
		{"a burn priced by another version", `UPDATE ledger_entries SET register_version = 99 WHERE kind = 'BURN' AND usage_event_id = (SELECT id FROM usage_events WHERE idempotency_key = 'k2')`, "entry versions"},
		// The foreign key sets the entries' usage_event_id to NULL.
		{"an event deleted under its entries", `DELETE FROM usage_events WHERE idempotency_key = 'k4'`, "burn cause"},
		{"a burn without a cause", `UPDATE ledger_entries SET usage_event_id = NULL WHERE kind = 'BURN' AND usage_event_id = (SELECT id FROM usage_events WHERE idempotency_key = 'k5')`, "burn cause"},
		{"a hold bigger than its entries", `UPDATE holds SET amount = '5' WHERE run_id = 'run-2'`, "hold"},
		{"a settled hold never released", `DELETE FROM ledger_entries WHERE kind = 'RELEASE'`, "release"},
		{"a hold whose event is gone", `DELETE FROM usage_events WHERE idempotency_key = 'run-2-STARTED'`, "orphan hold"},
		{"an entry on another organisation's pool", `UPDATE ledger_entries SET organization_id = organization_id + 1000 WHERE id = (SELECT MIN(id) FROM ledger_entries)`, "entry organisation"},
		{"spend from nowhere", `UPDATE pool_spends SET spent = '1000'`, "budget spend"},
		{"credits that were never paid", `UPDATE grants SET payment = 'PENDING' WHERE id = (SELECT MIN(id) FROM grants)`, "unpaid grant"},
		{"a fee of no subscription", `INSERT INTO charges (created_at, organization_id, kind, credits, amount, currency) SELECT created_at, id, 'TRUE_UP', '0', '5', 'USD' FROM organizations`, "subscription charge"},
		{"a change of no subscription", `INSERT INTO subscription_changes (created_at, subscription_id, organization_id, kind, at, from_plan_id, effective_at, status, credits, fee)
SELECT created_at, 999, id, 'UPGRADE', 'PERIOD_END', 1, created_at, 'SCHEDULED', '0', '0' FROM organizations`, "subscription history"},
		// (A grant or an entry on a missing pool or grant: the foreign keys refuse it.)
	}
	for _, dia := range testdb.Dialects {
		for _, c := range cases {
			t.Run(testdb.Name(dia)+"/"+strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				db := testdb.Open(t, dia)
				testdb.ExpectBroken(t)
				f := verifyFixture(t, db)
				if vs, err := f.svc.Verify(context.Background()); err != nil || len(vs) > 0 {
					t.Fatalf("healthy ledger: %v %v", vs, err)
				}
				if _, err := db.SQL.Exec(c.sql); err != nil {
					t.Fatalf("%s: %v", c.sql, err)
				}
				vs, err := f.svc.Verify(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range vs {
					if v.Invariant == c.invariant {
						return
					}
				}
				t.Fatalf("%s: want a %q violation, got %v", c.sql, c.invariant, vs)
			})
		}
	}
}

// TestVerifyLiveDatabase runs Verify over and over while goroutines record
// usage and runs: it reads one snapshot, so a live ledger is always whole.
func TestVerifyLiveDatabase(t *testing.T) {
	defer ledger.SetVerifyPage(7)()
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "100000", credit.CreditSubscription)
		var wg sync.WaitGroup
		var done atomic.Bool
		errs := make(chan error, 16)
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 60; i++ {
					in := f.usage(fmt.Sprintf("w%d-%d", w, i), "agent.run")
					if i%3 == 0 { // a run: STARTED, then SUCCEEDED below
						in.RunID, in.Status = in.IdempotencyKey, credit.StatusStarted
					}
					if _, err := f.svc.RecordUsage(ctx, in); err != nil {
						errs <- err
						return
					}
					if in.RunID != "" {
						in.IdempotencyKey, in.Status = in.IdempotencyKey+"-end", credit.StatusSucceeded
						if _, err := f.svc.RecordUsage(ctx, in); err != nil {
							errs <- err
							return
						}
					}
				}
			}()
		}
		checks := 0
		var vwg sync.WaitGroup
		vwg.Add(1)
		go func() {
			defer vwg.Done()
			for !done.Load() {
				vs, err := f.svc.Verify(ctx)
				if err != nil {
					errs <- err
					return
				}
				if len(vs) > 0 {
					errs <- fmt.Errorf("verify on a live ledger after %d checks: %v", checks, vs)
					return
				}
				checks++
			}
		}()
		wg.Wait()
		done.Store(true)
		vwg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("%d verifications while usage was recorded", checks)
	})
}
