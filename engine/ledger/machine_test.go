package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// The lifecycle state machine's answers (the README's table), each as a
// scenario on both dialects, ending with the ledger verified.

// subscribe puts the fixture's organisation on a plan starting now.
func (f *fixture) subscribe(t *testing.T, p ledger.PlanInput) *ent.Subscription {
	t.Helper()
	_, sub := f.subscribeWith(t, p, ledger.SubscribeInput{})
	return sub
}

// record records one usage event and fails the test on an error.
func (f *fixture) record(t *testing.T, in engine.UsageInput) ledger.UsageResult {
	t.Helper()
	res, err := f.svc.RecordUsage(context.Background(), in)
	if err != nil {
		t.Fatalf("usage %s: %v", in.IdempotencyKey, err)
	}
	return res
}

func (f *fixture) publish(t *testing.T, name string, kind credit.PolicyKind, expr string) {
	t.Helper()
	ctx := context.Background()
	pol, err := f.svc.SavePolicyDraft(ctx, ledger.PolicyInput{Name: name, Kind: kind, Expression: expr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PublishPolicy(ctx, pol.Name, pol.Version, nil); err != nil {
		t.Fatal(err)
	}
}

// Run STARTED x hard budget: the hold counts against the budget, so no run
// is approved that its settlement could not pay.
func TestMachineHoldsCountAgainstHardBudgets(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "100", credit.CreditSubscription)
		team, _, _ := f.tree(t)
		if _, err := f.svc.SetBudget(ctx, team.ID, d("10"), credit.PeriodMonth, true); err != nil {
			t.Fatal(err)
		}
		var started []string
		for i := 0; i < 5; i++ {
			in := f.runEvent(fmt.Sprintf("s%d", i), fmt.Sprintf("r%d", i), credit.StatusStarted, "5", "")
			in.PoolID = &team.ID
			res := f.record(t, in)
			want := credit.DecisionAllowed
			if i >= 2 {
				want = credit.DecisionDenied
			}
			if res.Decision != want || (want == credit.DecisionDenied && res.ReasonCode != credit.CodeBudgetExceeded) {
				t.Fatalf("start %d = %s %s, want %s", i, res.Decision, res.ReasonCode, want)
			}
			if res.Decision == credit.DecisionAllowed {
				started = append(started, fmt.Sprintf("r%d", i))
			}
		}
		p, _ := db.Client.Pool.Get(ctx, team.ID)
		if b, err := f.svc.Budget(ctx, p); err != nil || !b.Spent.Equal(d("10")) {
			t.Fatalf("budget spent with two runs open = %+v, %v; want 10", b, err)
		}
		verify(t, f.svc)
		for _, run := range started {
			in := f.runEvent("e"+run, run, credit.StatusSucceeded, "5", "")
			in.PoolID = &team.ID
			if res := f.record(t, in); res.Decision != credit.DecisionAllowed || !res.Credits.Equal(d("5")) {
				t.Fatalf("settle %s = %s %s, want ALLOWED 5", run, res.Decision, res.Credits)
			}
		}
		if b, _ := f.svc.Budget(ctx, p); !b.Spent.Equal(d("10")) {
			t.Fatalf("budget spent after settling = %s, want 10", b.Spent)
		}
		verify(t, f.svc)
	})
}

// Run terminal x cost above the hold: the hold burns, then the balance, then
// what the overage mode allows; the rest is UNCOVERED, never settled free.
func TestMachineOverrunningRun(t *testing.T) {
	for _, mode := range []credit.OverageMode{credit.OverageHard, credit.OverageSoft} {
		t.Run(string(mode), func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				f := setup(t, db)
				p := plan("p", mode, credit.RolloverNone, nil)
				p.IncludedCredits = d("10")
				f.subscribe(t, p)
				if r := f.record(t, f.runEvent("s", "r", credit.StatusStarted, "5", "")); !r.Reserved.Equal(d("5")) {
					t.Fatalf("start reserved %s, want 5", r.Reserved)
				}
				r := f.record(t, f.runEvent("e", "r", credit.StatusSucceeded, "20", ""))
				if r.Decision != credit.DecisionAllowed || !r.Credits.Equal(d("20")) {
					t.Fatalf("overrun = %s %s, want ALLOWED 20", r.Decision, r.Credits)
				}
				switch mode {
				case credit.OverageHard:
					if !r.Uncovered.Equal(d("10")) || r.ReasonCode != credit.CodeUncovered || !r.Overage.IsZero() {
						t.Fatalf("HARD overrun: uncovered %s code %s overage %s; want 10 UNCOVERED, no overage", r.Uncovered, r.ReasonCode, r.Overage)
					}
					as, err := f.svc.Alerts(ctx, &f.org.ID, 10, false)
					if err != nil || len(as) != 1 || as[0].Kind != string(credit.AlertRunUncovered) {
						t.Fatalf("alerts = %v, %v; want one UNCOVERED", as, err)
					}
				case credit.OverageSoft:
					if !r.Overage.Equal(d("10")) || !r.Uncovered.IsZero() {
						t.Fatalf("SOFT overrun: overage %s uncovered %s; want 10 overage", r.Overage, r.Uncovered)
					}
				}
				if b := f.balance(t); !b.Available.IsZero() || !b.Reserved.IsZero() {
					t.Fatalf("after the overrun: available %s reserved %s, want 0 and 0", b.Available, b.Reserved)
				}
				// The replay answers the same, and writes nothing.
				again := f.record(t, f.runEvent("e", "r", credit.StatusSucceeded, "20", ""))
				if !again.Duplicate || !again.Uncovered.Equal(r.Uncovered) || !again.Credits.Equal(r.Credits) {
					t.Fatalf("replay = %+v, want the first result", again)
				}
				verify(t, f.svc)
			})
		})
	}
}

// Run x DEGRADED, action allowed: the run runs DEGRADED like a single event.
func TestMachineDegradedRun(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		v2, err := f.svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{
			{Action: "agent.run", Credits: d("1"), DegradedAllowed: true}, {Action: "big.run", Credits: d("10")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.PublishRegister(ctx, "default", v2.Version, nil); err != nil {
			t.Fatal(err)
		}
		p := plan("degraded", credit.OverageDegraded, credit.RolloverNone, nil)
		p.IncludedCredits = d("5")
		f.subscribe(t, p)
		s := f.record(t, f.runEvent("s", "r", credit.StatusStarted, "8", ""))
		if s.Decision != credit.DecisionDegraded || !s.Reserved.Equal(d("5")) {
			t.Fatalf("degraded start = %s reserved %s, want DEGRADED holding the 5 left", s.Decision, s.Reserved)
		}
		e := f.record(t, f.runEvent("e", "r", credit.StatusSucceeded, "8", ""))
		if e.Decision != credit.DecisionDegraded || !e.Credits.Equal(d("5")) {
			t.Fatalf("degraded settle = %s %s, want DEGRADED charging 5", e.Decision, e.Credits)
		}
		in := f.runEvent("s2", "r2", credit.StatusStarted, "1", "")
		in.Action = "big.run"
		if r := f.record(t, in); r.Decision != credit.DecisionDenied {
			t.Fatalf("a run of an action not allowed degraded = %s, want DENIED", r.Decision)
		}
		verify(t, f.svc)
	})
}

// Run STARTED / FAILED x incentive rule: never earns on STARTED, FAILED only
// when the rule reads event.status.
func TestMachineIncentivesOnlyForCharges(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.publish(t, "incentives", credit.PolicyIncentive, `decimal("0.5") * event.quantity`)
		f.subscribe(t, plan("p", credit.OverageHard, credit.RolloverNone, nil))
		earned := func(r ledger.UsageResult) string {
			if len(r.Incentives) == 0 {
				return ""
			}
			return r.Incentives[0].Amount.String()
		}
		if r := f.record(t, f.runEvent("s", "r", credit.StatusStarted, "10", "")); earned(r) != "" {
			t.Fatalf("STARTED earned %s, want nothing", earned(r))
		}
		if r := f.record(t, f.runEvent("e", "r", credit.StatusSucceeded, "10", "")); earned(r) != "5" {
			t.Fatalf("SUCCEEDED run earned %q, want 5", earned(r))
		}
		failed := f.usage("f", "agent.run")
		failed.Status, failed.Quantity = credit.StatusFailed, dp("1000")
		if r := f.record(t, failed); earned(r) != "" || !r.Credits.IsZero() {
			t.Fatalf("FAILED earned %q for %s credits, want nothing", earned(r), r.Credits)
		}
		f.publish(t, "incentives", credit.PolicyIncentive, `event.status == "FAILED" ? decimal(1) : decimal(0)`)
		failed.IdempotencyKey = "f2"
		if r := f.record(t, failed); earned(r) != "1" {
			t.Fatalf("FAILED under a rule reading event.status earned %q, want 1", earned(r))
		}
		verify(t, f.svc)
	})
}

// Any event x period due: the period opens first, no event sees the gap.
func TestMachineNoGapAtPeriodBoundary(t *testing.T) {
	for _, mode := range []credit.OverageMode{credit.OverageHard, credit.OverageSoft} {
		t.Run(string(mode), func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				f := setup(t, db)
				sub := f.subscribe(t, plan("p", mode, credit.RolloverNone, nil))
				in := f.usage("a", "agent.run")
				in.Quantity = dp("30")
				f.record(t, in)
				f.clock.set(sub.NextPeriodAt.Add(time.Second)) // the scheduler has not run
				in = f.usage("b", "agent.run")
				in.Quantity = dp("90")
				r := f.record(t, in)
				if r.Decision != credit.DecisionAllowed || !r.Overage.IsZero() {
					t.Fatalf("usage just after the boundary = %s overage %s, want ALLOWED from the new period", r.Decision, r.Overage)
				}
				if got := f.available(t); !got.Equal(d("10")) {
					t.Fatalf("available %s, want 10 (the new period's 100 less 90; the old 70 expired)", got)
				}
				rep, err := f.svc.RunPeriodClose(ctx, f.clock.now())
				if err != nil || rep.SubscriptionsClosed != 0 {
					t.Fatalf("scheduler after usage opened the period = %+v, %v; want nothing left to do", rep, err)
				}
				verify(t, f.svc)
			})
		})
	}
}

// Period boundary x open hold: the hold carries into the new period; what
// its run does not burn of it expires when it settles.
func TestMachineHoldAcrossPeriodClose(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		sub := f.subscribe(t, plan("p", credit.OverageHard, credit.RolloverNone, nil))
		f.record(t, f.runEvent("s", "r", credit.StatusStarted, "30", ""))
		f.record(t, f.runEvent("s2", "r2", credit.StatusStarted, "30", ""))
		f.clock.set(sub.NextPeriodAt.Add(time.Minute))
		rep, err := f.svc.RunPeriodClose(ctx, f.clock.now())
		if err != nil || !rep.Expired.Equal(d("40")) {
			t.Fatalf("close = %+v, %v; want 40 expired (60 held)", rep, err)
		}
		if r := f.record(t, f.runEvent("e", "r", credit.StatusSucceeded, "30", "")); !r.Credits.Equal(d("30")) || !r.Uncovered.IsZero() {
			t.Fatalf("settle across the boundary = %s uncovered %s, want 30 from the hold", r.Credits, r.Uncovered)
		}
		if r := f.record(t, f.runEvent("e2", "r2", credit.StatusSucceeded, "10", "")); !r.Credits.Equal(d("10")) {
			t.Fatalf("short run across the boundary = %s, want 10", r.Credits)
		}
		if b := f.balance(t); !b.Available.Equal(d("100")) || !b.Reserved.IsZero() {
			t.Fatalf("after both settle: available %s reserved %s; want the new period's 100, the unburned 20 expired", b.Available, b.Reserved)
		}
		verify(t, f.svc)
	})
}

// Two servers on one database decide alike after changes made through
// either: a pool asked for before it existed is found once it exists, and
// a register version published through one prices the other's next event.
func TestMachineTwoServersDecideAlike(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "10", credit.CreditSubscription)
		other := ledger.New(db, ledger.WithClock(f.clock.now))
		next := f.pool.ID + 1
		in := f.usage("ghost", "agent.run")
		in.PoolID = &next
		if _, err := f.svc.RecordUsage(ctx, in); credit.CodeOf(err) != credit.CodeNotFound {
			t.Fatalf("usage on a pool not made yet: %v, want NOT_FOUND", err)
		}
		team, err := other.CreatePool(ctx, ledger.PoolInput{OrganizationID: f.org.ID, Kind: credit.PoolTeam, Name: "team", ParentID: &f.pool.ID})
		if err != nil || team.ID != next {
			t.Fatalf("team pool = %v, %v; want id %d", team, err, next)
		}
		for n, svc := range []*ledger.Service{f.svc, other} {
			in.IdempotencyKey = fmt.Sprintf("k%d", n)
			if r, err := svc.RecordUsage(ctx, in); err != nil || r.Decision != credit.DecisionAllowed || !r.Credits.Equal(d("1")) {
				t.Fatalf("server %d: usage on the new team pool = %+v, %v; want ALLOWED from its ACCOUNT parent", n, r, err)
			}
		}
		v2, err := other.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("2")}, {Action: "big.run", Credits: d("10")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.PublishRegister(ctx, "default", v2.Version, nil); err != nil {
			t.Fatal(err)
		}
		for n, svc := range []*ledger.Service{f.svc, other} {
			in.IdempotencyKey = fmt.Sprintf("v2-%d", n)
			if r, err := svc.RecordUsage(ctx, in); err != nil || !r.Credits.Equal(d("2")) || *r.Event.RegisterVersion != v2.Version {
				t.Fatalf("server %d: usage after a publish through the other = %+v, %v; want 2 credits of version %d", n, r, err, v2.Version)
			}
		}
		// A TRANSFER policy published through one server binds the other's next transfer.
		if _, err := f.svc.TransferCredits(ctx, ledger.TransferInput{FromPoolID: f.pool.ID, ToPoolID: team.ID, Amount: d("1")}); err != nil {
			t.Fatal(err)
		}
		pol, err := other.SavePolicyDraft(ctx, ledger.PolicyInput{Name: "none", Kind: credit.PolicyTransfer, Expression: `false`})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.PublishPolicy(ctx, pol.Name, pol.Version, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.TransferCredits(ctx, ledger.TransferInput{FromPoolID: f.pool.ID, ToPoolID: team.ID, Amount: d("1")}); credit.CodeOf(err) != credit.CodeTransferForbidden {
			t.Fatalf("a transfer after a TRANSFER policy published through the other server: %v, want TRANSFER_FORBIDDEN", err)
		}
		verify(t, f.svc)
	})
}

// Subscribe x a start long past: refused unless backfill; a backfill
// catches up a bounded number of periods per run.
func TestMachineBackfill(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		p := plan("daily", credit.OverageHard, credit.RolloverNone, nil)
		p.Period = credit.PeriodDay
		pl, err := f.svc.CreatePlan(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		in := ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: pl.ID, StartsAt: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)}
		if _, err := f.svc.Subscribe(ctx, in); credit.CodeOf(err) != credit.CodeValidation {
			t.Fatalf("subscribe from 1900: %v, want VALIDATION", err)
		}
		in.StartsAt = f.clock.now().AddDate(0, 0, -120)
		in.Backfill = true
		if _, err := f.svc.Subscribe(ctx, in); err != nil {
			t.Fatal(err)
		}
		for run, want := range []int{ledger.MaxPeriodsPerRun, ledger.MaxPeriodsPerRun, 120 - 2*ledger.MaxPeriodsPerRun} {
			rep, err := f.svc.RunPeriodClose(ctx, f.clock.now())
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.Allocated.Div(d("100")).IntPart(); got != int64(want) {
				t.Fatalf("run %d opened %d periods, want %d", run, got, want)
			}
		}
		verify(t, f.svc)
	})
}

// Hold timeout x hard budget: a run that timed out gives its budget back;
// its late terminal event is still charged (and counted) in full.
func TestMachineTimedOutHoldGivesBudgetBack(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "100", credit.CreditSubscription)
		team, _, _ := f.tree(t)
		if _, err := f.svc.SetBudget(ctx, team.ID, d("10"), credit.PeriodMonth, true); err != nil {
			t.Fatal(err)
		}
		on := func(in engine.UsageInput) engine.UsageInput { in.PoolID = &team.ID; return in }
		f.record(t, on(f.runEvent("s1", "r1", credit.StatusStarted, "10", "")))
		if r := f.record(t, on(f.runEvent("s2", "r2", credit.StatusStarted, "1", ""))); r.ReasonCode != credit.CodeBudgetExceeded {
			t.Fatalf("start past the budget = %s %s, want BUDGET_EXCEEDED", r.Decision, r.ReasonCode)
		}
		f.clock.add(2 * time.Hour)
		if n, err := f.svc.ReleaseExpiredHolds(ctx, f.clock.now()); err != nil || n != 1 {
			t.Fatalf("released %d, %v; want 1", n, err)
		}
		p, _ := db.Client.Pool.Get(ctx, team.ID)
		if b, _ := f.svc.Budget(ctx, p); !b.Spent.IsZero() {
			t.Fatalf("spent after the timeout = %s, want 0", b.Spent)
		}
		if r := f.record(t, on(f.runEvent("e1", "r1", credit.StatusSucceeded, "4", ""))); r.Decision != credit.DecisionAllowed || !r.Credits.Equal(d("4")) {
			t.Fatalf("late terminal event = %s %s, want ALLOWED 4", r.Decision, r.Credits)
		}
		if b, _ := f.svc.Budget(ctx, p); !b.Spent.Equal(d("4")) {
			t.Fatalf("spent after the late settle = %s, want 4", b.Spent)
		}
		verify(t, f.svc)
	})
}
