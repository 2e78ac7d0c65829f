package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/rules"
)

// The lifecycle state machine's cells for runs, decided without a
// database: run STARTED and run terminal against each condition of the
// pool (covered, short under each overage mode, a hold on an expired
// grant, no hold left). The README's table says the same in words.

func terms(mode engine.OverageMode) *engine.PlanTerms {
	t := &engine.PlanTerms{OverageMode: mode, TopUpsLeft: -1}
	switch mode {
	case engine.OverageAutoTopUp:
		t.TopUpCredits = d("10")
	case engine.OverageBorrow:
		t.BorrowLeft = d("10")
	}
	return t
}

// runVersions prices agent.run at 10 credits, allowed in degraded mode;
// big.run at 10, not allowed.
func runVersions(mode engine.OverageMode) engine.Versions {
	reg := &engine.Register{ID: 1, Name: "r", Version: 1, Weights: map[string]*engine.Weight{
		"agent.run": {Action: "agent.run", Credits: d("10"), DegradedAllowed: true},
		"big.run":   {Action: "big.run", Credits: d("10")},
	}}
	v := engine.Versions{Register: reg}
	if mode != "" {
		v.Terms = terms(mode)
	}
	return v
}

func pool(remaining string) [][]engine.Grant {
	return [][]engine.Grant{{{ID: 2, CreditType: engine.CreditSubscription, Amount: d("100"), Remaining: d(remaining), EffectiveAt: now.Add(-time.Hour)}}}
}

func draws(ds []engine.Draw) string {
	var b strings.Builder
	for _, x := range ds {
		fmt.Fprintf(&b, "%d:%s ", x.GrantID, x.Amount)
	}
	return strings.TrimSpace(b.String())
}

func TestReserve(t *testing.T) {
	tests := []struct {
		name      string
		mode      engine.OverageMode
		action    string
		remaining string
		decision  engine.Decision
		held      string
		code      engine.Code
		topUps    int
	}{
		{"covered", engine.OverageHard, "agent.run", "20", engine.DecisionAllowed, "10", "", 0},
		{"short, no subscription", "", "agent.run", "4", engine.DecisionDenied, "0", engine.CodeInsufficientCredits, 0},
		{"short, HARD", engine.OverageHard, "agent.run", "4", engine.DecisionDenied, "0", engine.CodeInsufficientCredits, 0},
		{"short, SOFT: holds what is left", engine.OverageSoft, "agent.run", "4", engine.DecisionAllowed, "4", "", 0},
		{"short, DEGRADED, action allowed", engine.OverageDegraded, "agent.run", "4", engine.DecisionDegraded, "4", "", 0},
		{"short, DEGRADED, action not allowed", engine.OverageDegraded, "big.run", "4", engine.DecisionDenied, "0", engine.CodeInsufficientCredits, 0},
		{"short, AUTO_TOP_UP: buy first", engine.OverageAutoTopUp, "agent.run", "4", engine.DecisionDenied, "0", "", 1},
		{"short, BORROW within the limit", engine.OverageBorrow, "agent.run", "4", engine.DecisionAllowed, "4", "", 0},
		{"empty, BORROW covers it all", engine.OverageBorrow, "agent.run", "0", engine.DecisionAllowed, "0", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := engine.Reserve(context.Background(), runVersions(tc.mode), engine.Org{ID: 1}, ev(tc.action, engine.StatusStarted), pool(tc.remaining), now)
			if err != nil {
				t.Fatal(err)
			}
			if r.Decision != tc.decision || !r.Held.Equal(d(tc.held)) || r.ReasonCode != tc.code || r.TopUps != tc.topUps || !r.Expected.Equal(d("10")) {
				t.Errorf("Reserve = %s held %s code %q topUps %d expected %s; want %s held %s code %q topUps %d expected 10",
					r.Decision, r.Held, r.ReasonCode, r.TopUps, r.Expected, tc.decision, tc.held, tc.code, tc.topUps)
			}
		})
	}
}

func TestSettleRun(t *testing.T) {
	held := []engine.Draw{{GrantID: 1, Amount: d("10")}}
	heldGrant := engine.Grant{ID: 1, CreditType: engine.CreditSubscription, Amount: d("10"), Remaining: d("0"), EffectiveAt: now.Add(-time.Hour)}
	expired := heldGrant
	expired.ExpiresAt = at(-0)
	tests := []struct {
		name       string
		mode       engine.OverageMode
		status     engine.UsageStatus
		quantity   string
		held       []engine.Draw
		heldGrant  engine.Grant
		remaining  string // the pool's other grant
		decision   engine.Decision
		credits    string
		draws      string
		overage    string
		uncovered  string
		expired    string
		code       engine.Code
		wantTopUps int
	}{
		{"costs its hold", engine.OverageHard, engine.StatusSucceeded, "1", held, heldGrant, "0", engine.DecisionAllowed, "10", "1:10", "0", "0", "", "", 0},
		{"costs less than its hold", engine.OverageHard, engine.StatusPartial, "1", held, heldGrant, "0", engine.DecisionAllowed, "5", "1:5", "0", "0", "", "", 0},
		{"fails: burns nothing", engine.OverageHard, engine.StatusFailed, "1", held, heldGrant, "0", engine.DecisionAllowed, "0", "", "0", "0", "", "", 0},
		{"overruns, the balance covers", engine.OverageHard, engine.StatusSucceeded, "2", held, heldGrant, "15", engine.DecisionAllowed, "20", "1:10 2:10", "0", "0", "", "", 0},
		{"overruns, HARD: the rest is uncovered", engine.OverageHard, engine.StatusSucceeded, "3", held, heldGrant, "15", engine.DecisionAllowed, "30", "1:10 2:15", "0", "5", "", engine.CodeUncovered, 0},
		{"overruns, no subscription: uncovered", "", engine.StatusSucceeded, "3", held, heldGrant, "15", engine.DecisionAllowed, "30", "1:10 2:15", "0", "5", "", engine.CodeUncovered, 0},
		{"overruns, SOFT: overage", engine.OverageSoft, engine.StatusSucceeded, "3", held, heldGrant, "15", engine.DecisionAllowed, "30", "1:10 2:15", "5", "0", "", "", 0},
		{"overruns, DEGRADED: waived", engine.OverageDegraded, engine.StatusSucceeded, "3", held, heldGrant, "15", engine.DecisionDegraded, "25", "1:10 2:15", "0", "0", "", "", 0},
		{"overruns, AUTO_TOP_UP: buy first", engine.OverageAutoTopUp, engine.StatusSucceeded, "3", held, heldGrant, "15", engine.DecisionDenied, "0", "1:10 2:15", "0", "5", "", "", 1},
		{"hold on a grant expired since: burns it, the rest expires", engine.OverageHard, engine.StatusPartial, "1", held, expired, "0", engine.DecisionAllowed, "5", "1:5", "0", "0", "1:5", "", 0},
		{"hold timed out: burns the balance", engine.OverageHard, engine.StatusSucceeded, "1", nil, heldGrant, "15", engine.DecisionAllowed, "10", "2:10", "0", "0", "", "", 0},
		{"hold timed out, nothing left: uncovered", engine.OverageHard, engine.StatusSucceeded, "1", nil, heldGrant, "0", engine.DecisionAllowed, "10", "", "0", "10", "", engine.CodeUncovered, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := ev("agent.run", tc.status)
			e.Quantity, e.Completion = d(tc.quantity), d("1")
			if tc.status == engine.StatusPartial {
				e.Completion = d("0.5")
			}
			tiers := pool(tc.remaining)
			tiers[0] = append([]engine.Grant{tc.heldGrant}, tiers[0]...)
			got, err := engine.SettleRun(context.Background(), runVersions(tc.mode), engine.Org{ID: 1}, e, tc.held, tiers, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.Decision != tc.decision || !got.Credits.Equal(d(tc.credits)) || draws(got.Draws) != tc.draws ||
				!got.Overage.Equal(d(tc.overage)) || !got.Uncovered.Equal(d(tc.uncovered)) || draws(got.Expired) != tc.expired ||
				got.ReasonCode != tc.code || got.TopUps != tc.wantTopUps {
				t.Errorf("SettleRun = %s credits %s draws [%s] overage %s uncovered %s expired [%s] code %q topUps %d;\n want %s credits %s draws [%s] overage %s uncovered %s expired [%s] code %q topUps %d",
					got.Decision, got.Credits, draws(got.Draws), got.Overage, got.Uncovered, draws(got.Expired), got.ReasonCode, got.TopUps,
					tc.decision, tc.credits, tc.draws, tc.overage, tc.uncovered, tc.expired, tc.code, tc.wantTopUps)
			}
			if tc.decision != engine.DecisionDenied && tc.code == "" && got.Decision == engine.DecisionDenied {
				t.Errorf("a terminal event was denied: %s", got.Reason)
			}
		})
	}
}

func TestUncoverAfterFailedTopUp(t *testing.T) {
	held := []engine.Draw{{GrantID: 1, Amount: d("10")}}
	tiers := [][]engine.Grant{{{ID: 1, Amount: d("10"), Remaining: d("0"), EffectiveAt: now.Add(-time.Hour)}}}
	e := ev("agent.run", engine.StatusSucceeded)
	e.Quantity = d("3")
	got, err := engine.SettleRun(context.Background(), runVersions(engine.OverageAutoTopUp), engine.Org{ID: 1}, e, held, tiers, now)
	if err != nil || got.TopUps == 0 {
		t.Fatalf("SettleRun = %+v, %v; want top-ups asked for", got, err)
	}
	u := engine.Uncover(got)
	if u.Decision != engine.DecisionAllowed || !u.Credits.Equal(d("30")) || !u.Uncovered.Equal(d("20")) || draws(u.Draws) != "1:10" {
		t.Errorf("Uncover = %s credits %s uncovered %s draws [%s]; want ALLOWED 30, 20 uncovered, 1:10", u.Decision, u.Credits, u.Uncovered, draws(u.Draws))
	}
}

func TestEarnsIncentive(t *testing.T) {
	plain := incentive(t, `decimal("0.5") * event.quantity`)
	failures := incentive(t, `event.status == "FAILED" ? decimal(1) : decimal(0)`)
	charged := engine.UsageDecision{Decision: engine.DecisionAllowed, Credits: d("5")}
	free := engine.UsageDecision{Decision: engine.DecisionAllowed, Credits: d("0")}
	tests := []struct {
		name string
		rule *engine.Rule
		ev   engine.UsageStatus
		d    engine.UsageDecision
		want bool
	}{
		{"no rule", nil, engine.StatusSucceeded, charged, false},
		{"a charging event", plain, engine.StatusSucceeded, charged, true},
		{"a free event", plain, engine.StatusSucceeded, free, false},
		{"a run's STARTED", plain, engine.StatusStarted, charged, false},
		{"DENIED", plain, engine.StatusSucceeded, engine.UsageDecision{Decision: engine.DecisionDenied, Credits: d("0")}, false},
		{"DEGRADED still charging", plain, engine.StatusSucceeded, engine.UsageDecision{Decision: engine.DecisionDegraded, Credits: d("2")}, true},
		{"uncovered run", plain, engine.StatusSucceeded, engine.UsageDecision{Decision: engine.DecisionAllowed, Credits: d("5"), Uncovered: d("1")}, false},
		{"FAILED, rule silent on status", plain, engine.StatusFailed, free, false},
		{"FAILED, rule reads event.status", failures, engine.StatusFailed, free, true},
	}
	for _, tc := range tests {
		if got := engine.EarnsIncentive(tc.rule, ev("agent.run", tc.ev), tc.d); got != tc.want {
			t.Errorf("EarnsIncentive(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func incentive(t *testing.T, expr string) *engine.Rule {
	t.Helper()
	p, err := rules.Compile(rules.KindIncentive, expr)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Rule{ID: 1, Name: "i", Kind: engine.PolicyIncentive, Version: 1, Program: p}
}

func TestBudgetDelta(t *testing.T) {
	nov, dec := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name               string
		charged, counted   string
		countedIn, current time.Time
		want               string
	}{
		{"settles as held", "5", "5", nov, nov, "0"},
		{"overruns", "8", "5", nov, nov, "3"},
		{"fails: the hold comes back", "0", "5", nov, nov, "-5"},
		{"started last period: all of it counts now", "8", "5", nov, dec, "8"},
	}
	for _, tc := range tests {
		if got := engine.BudgetDelta(d(tc.charged), d(tc.counted), tc.countedIn, tc.current); !got.Equal(d(tc.want)) {
			t.Errorf("BudgetDelta(%s) = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestOpenPeriod(t *testing.T) {
	start := now
	end := now.AddDate(0, 1, 0)
	ending := []engine.Grant{
		{ID: 1, CreditType: engine.CreditSubscription, Amount: d("100"), Remaining: d("30"), ExpiresAt: &start},
		{ID: 2, CreditType: engine.CreditOnDemand, Amount: d("10"), Remaining: d("4"), ExpiresAt: &start},
	}
	base := engine.PeriodTerms{Plan: "team", Pool: 9, RolloverMode: engine.RolloverNone, IncludedCredits: d("100"),
		PricePerCredit: d("0.01"), PlatformFee: d("49"), Currency: "USD", SubscriptionID: 3}
	capped := base
	capped.RolloverMode, capped.RolloverCap = engine.RolloverCapped, decimal.NewNullDecimal(d("20"))
	noFee := base
	noFee.PlatformFee = d("0")
	tests := []struct {
		name     string
		terms    engine.PeriodTerms
		running  bool
		borrowed string
		moves    string // "KIND grant amount" each
		open     string // "TYPE/KIND amount" each
		charges  int
	}{
		{"NONE: everything ending expires", base, true, "0", "EXPIRE 1 -30, EXPIRE 2 -4", "SUBSCRIPTION/GRANT 100", 1},
		{"CAPPED: up to the cap rolls", capped, true, "0", "EXPIRE 1 -10, EXPIRE 2 -4, ROLLOVER_OUT 1 -20", "ROLLOVER/ROLLOVER_IN 20, SUBSCRIPTION/GRANT 100", 1},
		{"borrowed comes off the allocation", noFee, true, "30", "EXPIRE 1 -30, EXPIRE 2 -4", "SUBSCRIPTION/GRANT 70", 0},
		{"past the term: only the close", capped, false, "0", "EXPIRE 1 -30, EXPIRE 2 -4", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			po := engine.OpenPeriod(tc.terms, 5, 2, start, end, ending, tc.running, d(tc.borrowed))
			var moves, open []string
			for _, m := range po.Moves {
				if m.Pool != 9 {
					t.Errorf("move on pool %d, want 9", m.Pool)
				}
				moves = append(moves, fmt.Sprintf("%s %d %s", m.Kind, m.Grant, m.Amount))
			}
			for _, o := range po.Open {
				if !o.EffectiveAt.Equal(start) || o.ExpiresAt == nil || !o.ExpiresAt.Equal(end) {
					t.Errorf("opening %+v: want effective at the start, expiring at the end", o)
				}
				open = append(open, fmt.Sprintf("%s/%s %s", o.CreditType, o.Kind, o.Amount))
			}
			if got := strings.Join(moves, ", "); got != tc.moves {
				t.Errorf("moves = %s, want %s", got, tc.moves)
			}
			if got := strings.Join(open, ", "); got != tc.open {
				t.Errorf("openings = %s, want %s", got, tc.open)
			}
			if len(po.Charges) != tc.charges || po.Org != 5 {
				t.Errorf("charges = %+v (org %d), want %d of organisation 5", po.Charges, po.Org, tc.charges)
			}
		})
	}
}
