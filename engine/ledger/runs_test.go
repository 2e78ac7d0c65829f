package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

func (f *fixture) runEvent(key, run string, status credit.UsageStatus, qty, completion string) engine.UsageInput {
	in := f.usage(key, "agent.run")
	in.RunID, in.Status, in.Quantity = run, status, dp(qty)
	if completion != "" {
		in.Completion = dp(completion)
	}
	return in
}

func (f *fixture) balance(t *testing.T) ledger.Balance {
	t.Helper()
	b, err := f.svc.Balance(context.Background(), f.pool)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunsHoldAndSettle(t *testing.T) {
	tests := []struct {
		name            string
		status          credit.UsageStatus
		qty, completion string
		credits, avail  string
	}{
		{"success burns the full run", credit.StatusSucceeded, "5", "", "5", "95"},
		{"failure burns nothing by default", credit.StatusFailed, "5", "", "0", "100"},
		{"partial is pro-rated", credit.StatusPartial, "5", "0.5", "2.5", "97.5"},
		{"a bigger run than expected burns more", credit.StatusSucceeded, "8", "", "8", "92"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				f := setup(t, db)
				f.grant(t, "100", credit.CreditSubscription)
				res, err := f.svc.RecordUsage(ctx, f.runEvent("start", "r1", credit.StatusStarted, "5", ""))
				if err != nil || res.Decision != credit.DecisionAllowed || !res.Reserved.Equal(d("5")) || !res.Credits.IsZero() {
					t.Fatalf("STARTED = %+v, %v; want ALLOWED, 5 reserved, 0 credits", res, err)
				}
				if b := f.balance(t); !b.Available.Equal(d("95")) || !b.Reserved.Equal(d("5")) {
					t.Fatalf("after start: available %s reserved %s, want 95 and 5", b.Available, b.Reserved)
				}
				res, err = f.svc.RecordUsage(ctx, f.runEvent("end", "r1", tc.status, tc.qty, tc.completion))
				if err != nil || !res.Credits.Equal(d(tc.credits)) {
					t.Fatalf("terminal = %+v, %v; want %s credits", res, err, tc.credits)
				}
				if b := f.balance(t); !b.Available.Equal(d(tc.avail)) || !b.Reserved.IsZero() {
					t.Fatalf("after settle: available %s reserved %s, want %s and 0", b.Available, b.Reserved, tc.avail)
				}
				verify(t, f.svc)
			})
		})
	}
}

func TestRunsBadSequences(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "10", credit.CreditSubscription)
		code := func(err error) credit.Code { return credit.CodeOf(err) }
		if _, err := f.svc.RecordUsage(ctx, f.runEvent("x", "ghost", credit.StatusSucceeded, "1", "")); code(err) != credit.CodeUnknownRun {
			t.Fatalf("terminal event of an unknown run: %v, want UNKNOWN_RUN", err)
		}
		if _, err := f.svc.RecordUsage(ctx, f.runEvent("s1", "r", credit.StatusStarted, "3", "")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.RecordUsage(ctx, f.runEvent("s2", "r", credit.StatusStarted, "3", "")); code(err) != credit.CodeRunStarted {
			t.Fatalf("second STARTED: %v, want RUN_STARTED", err)
		}
		if _, err := f.svc.RecordUsage(ctx, f.runEvent("e1", "r", credit.StatusSucceeded, "3", "")); err != nil {
			t.Fatal(err)
		}
		replay, err := f.svc.RecordUsage(ctx, f.runEvent("e1", "r", credit.StatusSucceeded, "3", ""))
		if err != nil || !replay.Duplicate {
			t.Fatalf("replayed terminal event: %+v, %v; want a duplicate", replay, err)
		}
		if _, err := f.svc.RecordUsage(ctx, f.runEvent("e2", "r", credit.StatusFailed, "3", "")); code(err) != credit.CodeRunSettled {
			t.Fatalf("second terminal event: %v, want RUN_SETTLED", err)
		}
		// A run too big for the pool may not start (HARD ceiling).
		res, err := f.svc.RecordUsage(ctx, f.runEvent("big", "r2", credit.StatusStarted, "50", ""))
		if err != nil || res.Decision != credit.DecisionDenied {
			t.Fatalf("oversized start: %+v, %v; want DENIED", res, err)
		}
		if b := f.balance(t); !b.Available.Equal(d("7")) || !b.Reserved.IsZero() {
			t.Fatalf("available %s reserved %s, want 7 and 0", b.Available, b.Reserved)
		}
		verify(t, f.svc)
	})
}

// Runs racing for one pool: holds never exceed what the pool has.
func TestRunsRacing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "10", credit.CreditSubscription)
		var started atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 20; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				run := fmt.Sprintf("run-%d", w)
				res, err := f.svc.RecordUsage(ctx, f.runEvent("s-"+run, run, credit.StatusStarted, "1", ""))
				if err != nil {
					t.Errorf("start %s: %v", run, err)
					return
				}
				if res.Decision != credit.DecisionAllowed {
					return
				}
				started.Add(1)
				if _, err := f.svc.RecordUsage(ctx, f.runEvent("e-"+run, run, credit.StatusSucceeded, "1", "")); err != nil {
					t.Errorf("settle %s: %v", run, err)
				}
			}(w)
		}
		wg.Wait()
		if b := f.balance(t); !b.Reserved.IsZero() || !b.Available.Equal(d("10").Sub(d(fmt.Sprint(started.Load())))) {
			t.Fatalf("%d runs started; available %s reserved %s", started.Load(), b.Available, b.Reserved)
		}
		if started.Load() < 10 {
			t.Fatalf("only %d of 20 one-credit runs started against 10 credits settled in turn", started.Load())
		}
		verify(t, f.svc)
	})
}

func TestRunsTimeOut(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "10", credit.CreditSubscription)
		if _, err := f.svc.RecordUsage(ctx, f.runEvent("s", "slow", credit.StatusStarted, "4", "")); err != nil {
			t.Fatal(err)
		}
		if n, err := f.svc.ReleaseExpiredHolds(ctx, f.clock.now()); err != nil || n != 0 {
			t.Fatalf("release before the timeout: %d, %v; want 0", n, err)
		}
		f.clock.add(ledger.DefaultHoldTimeout + time.Second)
		for i := 0; i < 2; i++ { // idempotent
			n, err := f.svc.ReleaseExpiredHolds(ctx, f.clock.now())
			if err != nil || n != 1-i {
				t.Fatalf("release %d: %d, %v; want %d", i, n, err, 1-i)
			}
		}
		if b := f.balance(t); !b.Available.Equal(d("10")) || !b.Reserved.IsZero() {
			t.Fatalf("after timeout: available %s reserved %s, want 10 and 0", b.Available, b.Reserved)
		}
		// The run reports late: it is charged, without a second release.
		res, err := f.svc.RecordUsage(ctx, f.runEvent("e", "slow", credit.StatusSucceeded, "4", ""))
		if err != nil || !res.Credits.Equal(d("4")) {
			t.Fatalf("late terminal event: %+v, %v; want 4 credits", res, err)
		}
		if got := f.available(t); !got.Equal(d("6")) {
			t.Fatalf("available = %s, want 6", got)
		}
		verify(t, f.svc)
	})
}
