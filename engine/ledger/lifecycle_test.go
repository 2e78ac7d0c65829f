package ledger_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// Lifecycle scenarios are data: a plan, a start, and a timeline of steps
// (usage, purchases, period closes) each with the balance it must leave, by
// credit type. Every scenario runs on PostgreSQL and SQLite and ends with the
// ledger invariants checked.

type step struct {
	at       string // the clock, RFC 3339
	use      string // "action quantity": record usage
	buy      string // credits to purchase on demand
	close    bool   // run the period close as of the clock
	decision credit.Decision
	balance  string // "TYPE=amount ..." of the pool after the step; "-" for an empty pool
	overage  string // the pool's overage this period, when set
	report   string // "expired rolled allocated" of the close, when set
}

type scenario struct {
	name    string
	plan    ledger.PlanInput
	start   string
	term    *int
	renew   *bool
	steps   []step
	charges []string // "KIND amount", oldest first
}

func dp(s string) *decimal.Decimal { v := d(s); return &v }

func plan(name string, over credit.OverageMode, roll credit.RolloverMode, cap *decimal.Decimal) ledger.PlanInput {
	p := ledger.PlanInput{Name: name, Period: credit.PeriodMonth, IncludedCredits: d("100"), PricePerCredit: d("0.01"),
		PlatformFee: d("5"), RegisterName: "default", OverageMode: over, RolloverMode: roll, RolloverCap: cap}
	if over == credit.OverageSoft {
		p.OveragePrice = dp("0.02")
	}
	return p
}

func topUpPlan() ledger.PlanInput {
	p := plan("topup", credit.OverageAutoTopUp, credit.RolloverNone, nil)
	p.AutoTopUpThreshold, p.AutoTopUpCredits, p.AutoTopUpCap, p.OnDemandPrice = dp("20"), dp("50"), ptr(2), dp("0.01")
	return p
}

func borrowPlan() ledger.PlanInput {
	p := plan("borrow", credit.OverageBorrow, credit.RolloverNone, nil)
	p.BorrowLimit = dp("30")
	return p
}

func TestLifecycleScenarios(t *testing.T) {
	two, no := 2, false
	withOnDemand := plan("team-od", credit.OverageHard, credit.RolloverNone, nil)
	withOnDemand.OnDemandPrice, withOnDemand.OnDemandExpiryDays = dp("0.015"), ptr(30)
	scenarios := []scenario{
		{name: "no rollover, month-end anchor", plan: plan("team", credit.OverageHard, credit.RolloverNone, nil), start: "2027-01-31T10:00:00Z",
			steps: []step{
				{at: "2027-01-31T10:00:00Z", balance: "SUBSCRIPTION=100"},
				{at: "2027-02-10T00:00:00Z", use: "agent.run 30", decision: credit.DecisionAllowed, balance: "SUBSCRIPTION=70"},
				{at: "2027-02-28T09:59:59Z", close: true, report: "0 0 0", balance: "SUBSCRIPTION=70"},
				{at: "2027-02-28T10:00:00Z", close: true, report: "70 0 100", balance: "SUBSCRIPTION=100"},
				{at: "2027-03-31T10:00:00Z", close: true, report: "100 0 100", balance: "SUBSCRIPTION=100"},
			},
			charges: []string{"PLATFORM_FEE 5", "PLATFORM_FEE 5", "PLATFORM_FEE 5"}},
		{name: "capped rollover", plan: plan("capped", credit.OverageHard, credit.RolloverCapped, dp("50")), start: "2027-01-01T00:00:00Z",
			steps: []step{
				{at: "2027-01-05T00:00:00Z", use: "agent.run 30", decision: credit.DecisionAllowed, balance: "SUBSCRIPTION=70"},
				{at: "2027-02-01T00:00:00Z", close: true, report: "20 50 100", balance: "ROLLOVER=50 SUBSCRIPTION=100"},
				{at: "2027-02-02T00:00:00Z", use: "agent.run 60", decision: credit.DecisionAllowed, balance: "SUBSCRIPTION=90"},
				{at: "2027-03-01T00:00:00Z", close: true, report: "40 50 100", balance: "ROLLOVER=50 SUBSCRIPTION=100"},
			}},
		{name: "one-time rollover", plan: plan("once", credit.OverageHard, credit.RolloverOneTime, nil), start: "2027-01-01T00:00:00Z",
			steps: []step{
				{at: "2027-01-05T00:00:00Z", use: "agent.run 30", decision: credit.DecisionAllowed, balance: "SUBSCRIPTION=70"},
				{at: "2027-02-01T00:00:00Z", close: true, report: "0 70 100", balance: "ROLLOVER=70 SUBSCRIPTION=100"},
				{at: "2027-03-01T00:00:00Z", close: true, report: "70 100 100", balance: "ROLLOVER=100 SUBSCRIPTION=100"},
			}},
		{name: "unlimited rollover, a late close opens every missed period", plan: plan("all", credit.OverageHard, credit.RolloverUnlimited, nil), start: "2027-01-01T00:00:00Z",
			steps: []step{
				{at: "2027-03-15T00:00:00Z", close: true, report: "0 300 200", balance: "ROLLOVER=200 SUBSCRIPTION=100"},
				{at: "2027-03-15T00:00:00Z", close: true, report: "0 0 0", balance: "ROLLOVER=200 SUBSCRIPTION=100"},
			}},
		{name: "soft overage is billed", plan: plan("soft", credit.OverageSoft, credit.RolloverNone, nil), start: "2027-01-01T00:00:00Z",
			steps: []step{
				{at: "2027-01-05T00:00:00Z", use: "big.run 1", decision: credit.DecisionAllowed, balance: "SUBSCRIPTION=90"},
				{at: "2027-01-06T00:00:00Z", use: "big.run 12", decision: credit.DecisionAllowed, balance: "-", overage: "30"},
				{at: "2027-02-01T00:00:00Z", close: true, report: "0 0 100", balance: "SUBSCRIPTION=100", overage: "0"},
			},
			charges: []string{"PLATFORM_FEE 5", "OVERAGE 0.6", "PLATFORM_FEE 5"}},
		{name: "auto top-up buys packs within its cap", plan: topUpPlan(), start: "2027-01-01T00:00:00Z",
			steps: []step{
				{at: "2027-01-02T00:00:00Z", use: "big.run 9", decision: credit.DecisionAllowed, balance: "ON_DEMAND=50 SUBSCRIPTION=10"},
				{at: "2027-01-03T00:00:00Z", use: "big.run 10", decision: credit.DecisionAllowed, balance: "ON_DEMAND=10"},
				{at: "2027-01-04T00:00:00Z", use: "big.run 2", decision: credit.DecisionDenied, balance: "ON_DEMAND=10"},
				{at: "2027-02-01T00:00:00Z", close: true, report: "0 0 100", balance: "ON_DEMAND=10 SUBSCRIPTION=100"},
				{at: "2027-02-02T00:00:00Z", use: "big.run 2", decision: credit.DecisionAllowed, balance: "ON_DEMAND=10 SUBSCRIPTION=80"},
			},
			charges: []string{"PLATFORM_FEE 5", "AUTO_TOP_UP 0.5", "AUTO_TOP_UP 0.5", "PLATFORM_FEE 5"}},
		{name: "borrowing from the next period", plan: borrowPlan(), start: "2027-01-01T00:00:00Z",
			steps: []step{
				{at: "2027-01-02T00:00:00Z", use: "big.run 12", decision: credit.DecisionAllowed, balance: "-"},
				{at: "2027-01-03T00:00:00Z", use: "agent.run 15", decision: credit.DecisionDenied, balance: "-"},
				{at: "2027-01-04T00:00:00Z", use: "agent.run 10", decision: credit.DecisionAllowed, balance: "-"},
				{at: "2027-02-01T00:00:00Z", close: true, report: "0 0 70", balance: "SUBSCRIPTION=70"},
			}},
		{name: "hard ceiling denies", plan: plan("hard", credit.OverageHard, credit.RolloverNone, nil), start: "2027-01-01T00:00:00Z",
			steps: []step{
				{at: "2027-01-05T00:00:00Z", use: "big.run 11", decision: credit.DecisionDenied, balance: "SUBSCRIPTION=100", overage: "0"},
			}},
		{name: "on-demand purchase", plan: withOnDemand, start: "2027-01-01T00:00:00Z",
			steps: []step{
				{at: "2027-01-05T00:00:00Z", buy: "1000", balance: "SUBSCRIPTION=100 ON_DEMAND=1000"},
				{at: "2027-01-06T00:00:00Z", use: "big.run 12", decision: credit.DecisionAllowed, balance: "ON_DEMAND=980"},
				// The pack expires after 30 days, and its remaining credits at the next close.
				{at: "2027-02-05T00:00:00Z", close: true, report: "0 0 100", balance: "SUBSCRIPTION=100"},
				{at: "2027-03-01T00:00:00Z", close: true, report: "1080 0 100", balance: "SUBSCRIPTION=100"},
			},
			charges: []string{"PLATFORM_FEE 5", "ON_DEMAND 15", "PLATFORM_FEE 5", "PLATFORM_FEE 5"}},
		{name: "a term that does not renew ends", plan: plan("term", credit.OverageHard, credit.RolloverUnlimited, nil), start: "2027-01-01T00:00:00Z",
			term: &two, renew: &no,
			steps: []step{
				{at: "2027-02-01T00:00:00Z", close: true, report: "0 100 100", balance: "ROLLOVER=100 SUBSCRIPTION=100"},
				{at: "2027-03-01T00:00:00Z", close: true, report: "200 0 0", balance: "-"},
				{at: "2027-06-01T00:00:00Z", close: true, report: "0 0 0", balance: "-"},
			}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) { runScenario(t, db, sc) })
		})
	}
}

func ptr[T any](v T) *T { return &v }

func runScenario(t *testing.T, db *store.DB, sc scenario) {
	ctx := context.Background()
	f := setup(t, db)
	start, _ := time.Parse(time.RFC3339, sc.start)
	f.clock.mu.Lock()
	f.clock.t = start
	f.clock.mu.Unlock()
	p, err := f.svc.CreatePlan(ctx, sc.plan)
	if err != nil {
		t.Fatalf("CreatePlan: %v", err)
	}
	if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: p.ID, StartsAt: start,
		TermPeriods: sc.term, AutoRenew: sc.renew}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	for i, st := range sc.steps {
		at, _ := time.Parse(time.RFC3339, st.at)
		f.clock.mu.Lock()
		f.clock.t = at
		f.clock.mu.Unlock()
		where := fmt.Sprintf("step %d (%s)", i, st.at)
		switch {
		case st.use != "":
			var action, qty string
			fmt.Sscan(st.use, &action, &qty)
			in := f.usage(fmt.Sprintf("k%d", i), action)
			in.Quantity = dp(qty)
			res, err := f.svc.RecordUsage(ctx, in)
			if err != nil || res.Decision != st.decision {
				t.Fatalf("%s: usage %s = %+v, %v; want %s", where, st.use, res, err, st.decision)
			}
		case st.buy != "":
			if _, err := f.svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d(st.buy)}); err != nil {
				t.Fatalf("%s: purchase: %v", where, err)
			}
		case st.close:
			rep, err := f.svc.RunPeriodClose(ctx, at)
			if err != nil {
				t.Fatalf("%s: RunPeriodClose: %v", where, err)
			}
			if got := rep.Expired.String() + " " + rep.RolledOver.String() + " " + rep.Allocated.String(); st.report != "" && got != st.report {
				t.Fatalf("%s: close report (expired rolled allocated) = %q, want %q", where, got, st.report)
			}
		}
		b, err := f.svc.Balance(ctx, f.pool)
		if err != nil {
			t.Fatal(err)
		}
		if got := balanceString(b); got != normalize(st.balance) {
			t.Fatalf("%s: balance = %q, want %q", where, got, normalize(st.balance))
		}
		if st.overage != "" && !b.Overage.Equal(d(st.overage)) {
			t.Fatalf("%s: overage = %s, want %s", where, b.Overage, st.overage)
		}
	}
	if sc.charges != nil {
		page, err := f.svc.Charges(ctx, &f.org.ID, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := len(page.Charges) - 1; i >= 0; i-- {
			got = append(got, page.Charges[i].Kind+" "+page.Charges[i].Amount.String())
		}
		if strings.Join(got, ", ") != strings.Join(sc.charges, ", ") {
			t.Fatalf("charges = %v, want %v", got, sc.charges)
		}
	}
	verify(t, f.svc)
}

func balanceString(b ledger.Balance) string {
	var parts []string
	for _, tb := range b.ByType {
		parts = append(parts, string(tb.CreditType)+"="+tb.Available.String())
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func normalize(s string) string {
	parts := strings.Fields(s)
	sort.Strings(parts)
	if len(parts) == 0 || s == "-" {
		return "-"
	}
	return strings.Join(parts, " ")
}

// Period close from many goroutines at once (as from several servers) opens
// each period once.
func TestPeriodCloseConcurrent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		start := f.clock.now()
		p, err := f.svc.CreatePlan(ctx, plan("team", credit.OverageHard, credit.RolloverUnlimited, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: p.ID, StartsAt: start}); err != nil {
			t.Fatal(err)
		}
		f.clock.add(24 * time.Hour * 95) // three boundaries passed
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := decimal.Zero
		for w := 0; w < 6; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep, err := f.svc.RunPeriodClose(ctx, f.clock.now())
				if err != nil {
					t.Errorf("RunPeriodClose: %v", err)
					return
				}
				mu.Lock()
				total = total.Add(rep.Allocated)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if !total.Equal(d("300")) {
			t.Fatalf("allocated %s across runners, want 300 (three periods once each)", total)
		}
		if got := f.available(t); !got.Equal(d("400")) {
			t.Fatalf("available = %s, want 400", got)
		}
		verify(t, f.svc)
	})
}

func TestLifecycleBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		code := func(err error) credit.Code { return credit.CodeOf(err) }
		capped := plan("c", credit.OverageHard, credit.RolloverCapped, nil)
		if _, err := f.svc.CreatePlan(ctx, capped); code(err) != credit.CodeValidation {
			t.Fatalf("CAPPED without cap: %v, want VALIDATION", err)
		}
		soft := plan("s", credit.OverageSoft, credit.RolloverNone, nil)
		soft.OveragePrice = nil
		if _, err := f.svc.CreatePlan(ctx, soft); code(err) != credit.CodeValidation {
			t.Fatalf("SOFT without price: %v, want VALIDATION", err)
		}
		p, err := f.svc.CreatePlan(ctx, plan("ok", credit.OverageHard, credit.RolloverNone, nil))
		if err != nil {
			t.Fatal(err)
		}
		now := f.clock.now()
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: p.ID, StartsAt: now}); err != nil {
			t.Fatal(err)
		}
		later := now.Add(24 * time.Hour)
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: p.ID, StartsAt: later}); code(err) != credit.CodeSubscriptionOverlap {
			t.Fatalf("overlapping subscription: %v, want SUBSCRIPTION_OVERLAP", err)
		}
		if _, err := f.svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d("10")}); code(err) != credit.CodeNoOnDemandPrice {
			t.Fatalf("purchase without on-demand price: %v, want NO_ON_DEMAND_PRICE", err)
		}
		if _, err := f.svc.RunPeriodClose(ctx, now.Add(48*time.Hour)); code(err) != credit.CodeValidation {
			t.Fatalf("close in the future: %v, want VALIDATION", err)
		}
		if got := f.available(t); !got.Equal(d("100")) {
			t.Fatalf("available = %s, want 100 (only the first allocation)", got)
		}
		verify(t, f.svc)
	})
}

// DEGRADED plans run only the actions the register allows in degraded mode;
// an OVERAGE policy lets chosen events through as overage on any plan.
func TestDegradedModeAndOveragePolicy(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		v2, err := f.svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{
			{Action: "agent.run", Credits: d("1"), DegradedAllowed: true}, {Action: "big.run", Credits: d("10")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.PublishRegister(ctx, "default", v2.Version, nil); err != nil {
			t.Fatal(err)
		}
		p := plan("degraded", credit.OverageDegraded, credit.RolloverNone, nil)
		p.IncludedCredits = d("5")
		pl, err := f.svc.CreatePlan(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: pl.ID, StartsAt: f.clock.now()}); err != nil {
			t.Fatal(err)
		}
		use := func(key, action, qty string) ledger.UsageResult {
			in := f.usage(key, action)
			in.Quantity = dp(qty)
			res, err := f.svc.RecordUsage(ctx, in)
			if err != nil {
				t.Fatalf("usage %s: %v", key, err)
			}
			return res
		}
		if r := use("a", "agent.run", "8"); r.Decision != credit.DecisionDegraded || !r.Credits.Equal(d("5")) {
			t.Fatalf("allowed action out of credits = %s %s; want DEGRADED charging the 5 left", r.Decision, r.Credits)
		}
		if r := use("b", "big.run", "1"); r.Decision != credit.DecisionDenied {
			t.Fatalf("other action out of credits = %s; want DENIED", r.Decision)
		}
		pol, err := f.svc.SavePolicyDraft(ctx, ledger.PolicyInput{Name: "critical", Kind: credit.PolicyOverage,
			Expression: `has(event.properties.critical) && event.properties.critical == true && shortfall <= decimal(100)`})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.PublishPolicy(ctx, pol.Name, pol.Version, nil); err != nil {
			t.Fatal(err)
		}
		in := f.usage("c", "big.run")
		in.Properties = map[string]any{"critical": true}
		r, err := f.svc.RecordUsage(ctx, in)
		if err != nil || r.Decision != credit.DecisionAllowed || !r.Overage.Equal(d("10")) {
			t.Fatalf("critical event = %+v, %v; want ALLOWED with 10 overage", r, err)
		}
		if r := use("d", "big.run", "1"); r.Decision != credit.DecisionDenied {
			t.Fatalf("non-critical event = %s; want DENIED", r.Decision)
		}
		verify(t, f.svc)
	})
}

// A subscription that pins its register version keeps its prices when a new
// version is published (grandfathering).
func TestGrandfatheredRegister(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		pl, err := f.svc.CreatePlan(ctx, plan("pinned", credit.OverageHard, credit.RolloverNone, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: pl.ID, StartsAt: f.clock.now(), RegisterVersion: ptr(9)}); credit.CodeOf(err) != credit.CodeNotFound {
			t.Fatalf("pinning an unpublished version: %v, want NOT_FOUND", err)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: pl.ID, StartsAt: f.clock.now(), RegisterVersion: ptr(1)}); err != nil {
			t.Fatal(err)
		}
		v2, err := f.svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("3")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.PublishRegister(ctx, "default", v2.Version, nil); err != nil {
			t.Fatal(err)
		}
		res, err := f.svc.RecordUsage(ctx, f.usage("k", "agent.run"))
		if err != nil || !res.Credits.Equal(d("1")) || *res.Event.RegisterVersion != 1 {
			t.Fatalf("usage under a pinned register = %+v, %v; want 1 credit by version 1", res, err)
		}
		verify(t, f.svc)
	})
}

// Burns racing on an AUTO_TOP_UP plan buy packs within the period's cap and
// never more than they need.
func TestAutoTopUpUnderConcurrentBurns(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		pl, err := f.svc.CreatePlan(ctx, topUpPlan()) // 100 included, packs of 50 below 20, at most 2 a period
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: pl.ID, StartsAt: f.clock.now()}); err != nil {
			t.Fatal(err)
		}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 24; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				in := f.usage(fmt.Sprintf("w%d", w), "big.run") // 10 credits each
				res, err := f.svc.RecordUsage(ctx, in)
				if err != nil {
					t.Errorf("usage: %v", err)
					return
				}
				if res.Decision == credit.DecisionAllowed {
					allowed.Add(1)
				}
			}(w)
		}
		wg.Wait()
		// 100 included + 2 packs of 50 = 200 credits: exactly 20 burns of 10.
		if allowed.Load() != 20 {
			t.Fatalf("%d burns allowed, want 20 (100 included + two packs of 50)", allowed.Load())
		}
		page, err := f.svc.Charges(ctx, &f.org.ID, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		packs := 0
		for _, c := range page.Charges {
			if c.Kind == "AUTO_TOP_UP" {
				packs++
			}
		}
		if packs != 2 {
			t.Fatalf("%d packs bought, want 2 (the cap)", packs)
		}
		verify(t, f.svc)
	})
}

// Rollover, pooling and borrowing together: a team spends through to the
// account, borrows from the next period, and the close rolls over what is
// left and takes the borrowed credits out of the next allocation.
func TestRolloverPoolingAndBorrow(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		team, alice, _ := f.tree(t)
		p := plan("combo", credit.OverageBorrow, credit.RolloverCapped, dp("40"))
		p.BorrowLimit = dp("25")
		pl, err := f.svc.CreatePlan(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: pl.ID, StartsAt: f.clock.now()}); err != nil {
			t.Fatal(err)
		}
		f.grantTo(t, team, "10")
		// Alice spends 10 of the team's grant, then 90 of the account's 100.
		if res := f.useOn(t, alice, "a", "100"); res.Decision != credit.DecisionAllowed || len(res.Draws) != 2 {
			t.Fatalf("first burn = %+v; want two draws", res)
		}
		// 30 more: 10 left in the account, 20 borrowed from next period.
		res := f.useOn(t, alice, "b", "30")
		if res.Decision != credit.DecisionAllowed || !res.Borrowed.Equal(d("20")) {
			t.Fatalf("second burn = %s, borrowed %s; want ALLOWED with 20 borrowed", res.Decision, res.Borrowed)
		}
		if res := f.useOn(t, alice, "c", "6"); res.Decision != credit.DecisionDenied {
			t.Fatalf("third burn = %s; want DENIED (5 left to borrow)", res.Decision)
		}
		f.clock.add(31 * 24 * time.Hour)
		rep, err := f.svc.RunPeriodClose(ctx, f.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		// Nothing was left to roll; the next allocation is 100 - 20 borrowed.
		if !rep.Allocated.Equal(d("80")) || !rep.RolledOver.IsZero() {
			t.Fatalf("close = %+v; want 80 allocated, nothing rolled", rep)
		}
		if got := availableOf(t, f, f.pool); got != "80" {
			t.Fatalf("account available = %s, want 80", got)
		}
		verify(t, f.svc)
	})
}
