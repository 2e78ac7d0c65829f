package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// tiers creates the team (300 included, fee 30) and pro (600, fee 60)
// plans of one family and subscribes the fixture to team.
func (f *fixture) tiers(t *testing.T) (*ent.Subscription, *ent.Plan, *ent.Plan) {
	t.Helper()
	ctx := context.Background()
	mk := func(name string, tier int, included, fee string) *ent.Plan {
		p := plan(name, credit.OverageHard, credit.RolloverNone, nil)
		p.IncludedCredits, p.PlatformFee, p.PricePerCredit = d(included), d(fee), d("0.1")
		p.Family, p.Tier = "agents", ptr(tier)
		pl, err := f.svc.CreatePlan(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	team, pro := mk("team", 1, "300", "30"), mk("pro", 2, "600", "60")
	sub, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: team.ID, StartsAt: f.clock.now()})
	if err != nil {
		t.Fatal(err)
	}
	return sub, team, pro
}

func (f *fixture) charges(t *testing.T, kind string) []*ent.Charge {
	t.Helper()
	cs, err := f.db.Client.Charge.Query().Where(charge.Kind(kind)).Order(ent.Asc(charge.FieldID)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// An upgrade mid-period, a previewed downgrade, a downgrade at the period
// end applied by the period close, a cancellation at the period end.
// The period is 30 days; the changes come with 10 days left: f = 1/3.
func TestPlanChangesThroughTheLifecycle(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		sub, team, pro := f.tiers(t)
		f.use(t, "u1", "100") // 200 of team's 300 left
		f.clock.add(20 * 24 * time.Hour)
		// Upgrade now: (600 - 300) x 1/3 = 100 credits more; fee (60 - 30) x 1/3 = 10.
		up, err := f.svc.ChangePlan(ctx, ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: pro.ID, At: ledger.AtNow})
		if err != nil || up.Kind != "UPGRADE" || up.Status != "APPLIED" || !up.Credits.Equal(d("100")) || !up.Fee.Equal(d("10")) {
			t.Fatalf("upgrade = %+v, %v", up, err)
		}
		if got := f.available(t); !got.Equal(d("300")) {
			t.Fatalf("available after the upgrade %s, want 300 (200 + 100)", got)
		}
		if cs := f.charges(t, "PRORATION"); len(cs) != 1 || !cs[0].Amount.Equal(d("10")) {
			t.Fatalf("PRORATION charges %v, want one of 10", cs)
		}
		// A downgrade now would take (600 - 300) x 1/3 = 100 back from the
		// 300 unused, and refund 10 of the fee: previewed, nothing written.
		pv, err := f.svc.PreviewPlanChange(ctx, ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: team.ID, At: ledger.AtNow})
		if err != nil || pv.Kind != "DOWNGRADE" || !pv.Credits.Equal(d("-100")) || !pv.Fee.Equal(d("-10")) || len(pv.Moves) == 0 {
			t.Fatalf("preview = %+v, %v", pv.PlanChange, err)
		}
		if got := f.available(t); !got.Equal(d("300")) {
			t.Fatalf("a preview changed the balance: %s", got)
		}
		down, err := f.svc.ChangePlan(ctx, ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: team.ID, At: ledger.AtPeriodEnd})
		if err != nil || down.Status != "SCHEDULED" {
			t.Fatalf("downgrade at the period end = %+v, %v", down, err)
		}
		f.clock.add(10 * 24 * time.Hour) // the next period: team again, 300 included, fee 30
		if _, err := f.svc.RunPeriodClose(ctx, f.clock.now()); err != nil {
			t.Fatal(err)
		}
		cur, err := f.svc.CurrentSubscription(ctx, f.org.ID)
		if err != nil || cur.PlanID != team.ID || cur.PendingPlanID != nil {
			t.Fatalf("after the period close: %+v, %v; want team, nothing pending", cur, err)
		}
		if got := f.available(t); !got.Equal(d("300")) {
			t.Fatalf("available in the new period %s, want team's 300", got)
		}
		if fees := f.charges(t, "PLATFORM_FEE"); len(fees) != 2 || !fees[1].Amount.Equal(d("30")) {
			t.Fatalf("platform fees %v, want 30 then team's 30", fees)
		}
		if _, err := f.svc.CancelSubscription(ctx, ledger.CancelInput{SubscriptionID: sub.ID, At: ledger.AtPeriodEnd}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			do   func() error
			code credit.Code
		}{
			{"cancel twice", func() error {
				_, err := f.svc.CancelSubscription(ctx, ledger.CancelInput{SubscriptionID: sub.ID, At: ledger.AtNow})
				return err
			}, credit.CodeSubscriptionEnded},
			{"change a cancelled subscription", func() error {
				_, err := f.svc.ChangePlan(ctx, ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: pro.ID, At: ledger.AtNow})
				return err
			}, credit.CodeSubscriptionEnded},
		} {
			if err := c.do(); credit.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
		}
		f.clock.add(31 * 24 * time.Hour)
		if _, err := f.svc.RunPeriodClose(ctx, f.clock.now()); err != nil {
			t.Fatal(err)
		}
		if fees := f.charges(t, "PLATFORM_FEE"); len(fees) != 2 {
			t.Fatalf("a fee after the cancellation: %v", fees)
		}
		hist, err := f.svc.SubscriptionChanges(ctx, sub)
		if err != nil || len(hist) != 3 || hist[0].Kind != "UPGRADE" || hist[1].Status != "APPLIED" || hist[2].Kind != "CANCEL" {
			t.Fatalf("history %v, %v; want the upgrade, the applied downgrade, the cancellation", hist, err)
		}
		verify(t, f.svc)
	})
}

// Changes that cannot be made change nothing.
func TestPlanChangeBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		sub, team, _ := f.tiers(t)
		euro := plan("euro", credit.OverageHard, credit.RolloverNone, nil)
		euro.Currency = "EUR"
		eur, err := f.svc.CreatePlan(ctx, euro)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			in   ledger.PlanChangeInput
			code credit.Code
		}{
			{"the same plan", ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: team.ID, At: ledger.AtNow}, credit.CodeSamePlan},
			{"another currency", ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: eur.ID, At: ledger.AtNow}, credit.CodeCurrencyMismatch},
			{"an unknown plan", ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: 999999, At: ledger.AtNow}, credit.CodeNotFound},
			{"an unknown time", ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: eur.ID, At: "TOMORROW"}, credit.CodeValidation},
			{"an unknown subscription", ledger.PlanChangeInput{SubscriptionID: 999999, PlanID: eur.ID, At: ledger.AtNow}, credit.CodeNotFound},
		} {
			if _, err := f.svc.ChangePlan(ctx, c.in); credit.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
		}
		if hist, err := f.svc.SubscriptionChanges(ctx, sub); err != nil || len(hist) != 0 {
			t.Fatalf("history after bad changes: %v, %v", hist, err)
		}
	})
}

// A plan's entitlements deny other actions, charging nothing; seed credits
// arrive once, not every period.
func TestEntitlementsAndSeedCredits(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		p := plan("starter", credit.OverageHard, credit.RolloverNone, nil)
		p.EntitledActions, p.SeedCredits = []string{"agent.run"}, dp("50")
		bad := p
		bad.Name, bad.EntitledActions = "bad", []string{"agent.run", "teleport"}
		if _, err := f.svc.CreatePlan(ctx, bad); credit.CodeOf(err) != credit.CodeUnknownAction {
			t.Fatalf("entitling an action the register lacks: %v, want UNKNOWN_ACTION", err)
		}
		f.subscribe(t, p)
		if got := f.available(t); !got.Equal(d("150")) {
			t.Fatalf("available %s, want 150 (100 included + 50 seed)", got)
		}
		res := f.record(t, f.usage("big", "big.run"))
		if res.Decision != credit.DecisionDenied || res.ReasonCode != credit.CodeNotEntitled || !res.Credits.IsZero() {
			t.Fatalf("big.run on starter: %s %s %s, want DENIED NOT_ENTITLED, nothing charged", res.Decision, res.ReasonCode, res.Credits)
		}
		run := f.usage("run-1-start", "big.run")
		run.RunID, run.Status = "run-1", credit.StatusStarted
		if r := f.record(t, run); r.Decision != credit.DecisionDenied || r.ReasonCode != credit.CodeNotEntitled {
			t.Fatalf("a run of big.run: %s %s, want DENIED NOT_ENTITLED", r.Decision, r.ReasonCode)
		}
		if r := f.record(t, f.usage("ok", "agent.run")); r.Decision != credit.DecisionAllowed {
			t.Fatalf("agent.run: %s", r.Decision)
		}
		f.clock.add(31 * 24 * time.Hour)
		if _, err := f.svc.RunPeriodClose(ctx, f.clock.now()); err != nil {
			t.Fatal(err)
		}
		// agent.run drew the expiring included credits first (FEFO): the
		// 50 seed credits stay, the 99 left expired, 100 new arrived.
		if got := f.available(t); !got.Equal(d("150")) {
			t.Fatalf("available next period %s, want 150 (50 seed + 100 included)", got)
		}
		verify(t, f.svc)
	})
}

// Members' default limits come with the plan and grow with an upgrade;
// a limit an admin set stays.
func TestMemberLimitsGrowWithTheTier(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		small := plan("small", credit.OverageHard, credit.RolloverNone, nil)
		small.MemberLimit = dp("50")
		large := plan("large", credit.OverageHard, credit.RolloverNone, nil)
		large.MemberLimit, large.IncludedCredits = dp("200"), d("500")
		f.subscribe(t, small)
		lg, err := f.svc.CreatePlan(ctx, large)
		if err != nil {
			t.Fatal(err)
		}
		member := func(name string) *ent.Pool {
			p, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: f.org.ID, Kind: credit.PoolPersonal, Name: name, ParentID: &f.pool.ID})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		alice, bob := member("alice"), member("bob")
		if !alice.BudgetAmount.Valid || !alice.BudgetAmount.Decimal.Equal(d("50")) || !alice.BudgetHard || *alice.BudgetPeriod != credit.PeriodMonth {
			t.Fatalf("alice's budget %+v, want the plan's 50 a month, hard", alice)
		}
		if _, err := f.svc.SetBudget(ctx, bob.ID, d("10"), credit.PeriodMonth, true); err != nil {
			t.Fatal(err)
		}
		sub, err := f.svc.CurrentSubscription(ctx, f.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.add(24 * time.Hour)
		if _, err := f.svc.ChangePlan(ctx, ledger.PlanChangeInput{SubscriptionID: sub.ID, PlanID: lg.ID, At: ledger.AtNow}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			p    *ent.Pool
			want string
		}{{alice, "200"}, {bob, "10"}} {
			p, err := f.db.Client.Pool.Get(ctx, c.p.ID)
			if err != nil || !p.BudgetAmount.Decimal.Equal(d(c.want)) {
				t.Errorf("%s's budget after the upgrade %v (%v), want %s", p.Name, p.BudgetAmount, err, c.want)
			}
		}
	})
}

// The buyer's overage cap holds under concurrent burns on several pools:
// 4 pools with no credits of their own, 5 events of 3 credits each, a cap
// of 30 credits: exactly 10 events pass as overage, the others are DENIED
// OVERAGE_CAP; the alert at 80% (24) is raised once.
func TestOverageCapUnderConcurrentBurns(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.subscribe(t, plan("soft", credit.OverageSoft, credit.RolloverNone, nil))
		if _, err := f.svc.SetOverageCap(ctx, f.org.ID, dp("-1"), nil); credit.CodeOf(err) != credit.CodeValidation {
			t.Fatalf("a negative cap: %v", err)
		}
		if _, err := f.svc.SetOverageCap(ctx, f.org.ID, dp("30"), dp("100")); err != nil { // 100 at 0.02 is 5000 credits: 30 binds
			t.Fatal(err)
		}
		var pools []int
		for _, name := range []string{"a", "b", "c", "d"} {
			p, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: f.org.ID, Kind: credit.PoolTeam, Name: name, ParentID: &f.pool.ID, NoFallThrough: true})
			if err != nil {
				t.Fatal(err)
			}
			pools = append(pools, p.ID)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		passed, capped := 0, 0
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := f.usage(fmt.Sprintf("burn-%d", i), "agent.run")
				in.PoolID, in.Quantity = &pools[i%4], dp("3")
				res, err := f.svc.RecordUsage(ctx, in)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Error(err)
				case res.Decision == credit.DecisionAllowed && res.Overage.Equal(d("3")):
					passed++
				case res.ReasonCode == credit.CodeOverageCap:
					capped++
				default:
					t.Errorf("burn %d: %s %s", i, res.Decision, res.ReasonCode)
				}
			}()
		}
		wg.Wait()
		if passed != 10 || capped != 10 {
			t.Fatalf("%d passed, %d capped; want 10 and 10", passed, capped)
		}
		n := 0
		for _, a := range f.alerts(t) {
			if a.Kind == string(credit.AlertOverageCap) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d OVERAGE_CAP alerts, want 1", n)
		}
		verify(t, f.svc)
	})
}
