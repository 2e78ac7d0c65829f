package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/rules"
)

// The lifecycle state machine's cells for runs, decided without a
// database: run STARTED and run terminal against each condition of the
// pool (covered, short under each overage mode, a hold on an expired
// grant, no hold left). The README's table says the same in words.

func terms(mode credit.OverageMode) *engine.PlanTerms {
	t := &engine.PlanTerms{OverageMode: mode, TopUpsLeft: -1}
	switch mode {
	case credit.OverageAutoTopUp:
		t.TopUpCredits = d("10")
	case credit.OverageBorrow:
		t.BorrowLeft = d("10")
	}
	return t
}

// runVersions prices agent.run at 10 credits, allowed in degraded mode;
// big.run at 10, not allowed.
func runVersions(mode credit.OverageMode) engine.Versions {
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
	return [][]engine.Grant{{{ID: 2, CreditType: credit.CreditSubscription, Amount: d("100"), Remaining: d(remaining), EffectiveAt: now.Add(-time.Hour)}}}
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
		mode      credit.OverageMode
		action    string
		remaining string
		decision  credit.Decision
		held      string
		code      credit.Code
		topUps    int
	}{
		{"covered", credit.OverageHard, "agent.run", "20", credit.DecisionAllowed, "10", "", 0},
		{"short, no subscription", "", "agent.run", "4", credit.DecisionDenied, "0", credit.CodeInsufficientCredits, 0},
		{"short, HARD", credit.OverageHard, "agent.run", "4", credit.DecisionDenied, "0", credit.CodeInsufficientCredits, 0},
		{"short, SOFT: holds what is left", credit.OverageSoft, "agent.run", "4", credit.DecisionAllowed, "4", "", 0},
		{"short, DEGRADED, action allowed", credit.OverageDegraded, "agent.run", "4", credit.DecisionDegraded, "4", "", 0},
		{"short, DEGRADED, action not allowed", credit.OverageDegraded, "big.run", "4", credit.DecisionDenied, "0", credit.CodeInsufficientCredits, 0},
		{"short, AUTO_TOP_UP: buy first", credit.OverageAutoTopUp, "agent.run", "4", credit.DecisionDenied, "0", "", 1},
		{"short, BORROW within the limit", credit.OverageBorrow, "agent.run", "4", credit.DecisionAllowed, "4", "", 0},
		{"empty, BORROW covers it all", credit.OverageBorrow, "agent.run", "0", credit.DecisionAllowed, "0", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := engine.Reserve(context.Background(), runVersions(tc.mode), engine.Org{ID: 1}, ev(tc.action, credit.StatusStarted), pool(tc.remaining), now)
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
	heldGrant := engine.Grant{ID: 1, CreditType: credit.CreditSubscription, Amount: d("10"), Remaining: d("0"), EffectiveAt: now.Add(-time.Hour)}
	expired := heldGrant
	expired.ExpiresAt = at(-0)
	tests := []struct {
		name       string
		mode       credit.OverageMode
		status     credit.UsageStatus
		quantity   string
		held       []engine.Draw
		heldGrant  engine.Grant
		remaining  string // the pool's other grant
		decision   credit.Decision
		credits    string
		draws      string
		overage    string
		uncovered  string
		expired    string
		code       credit.Code
		wantTopUps int
	}{
		{"costs its hold", credit.OverageHard, credit.StatusSucceeded, "1", held, heldGrant, "0", credit.DecisionAllowed, "10", "1:10", "0", "0", "", "", 0},
		{"costs less than its hold", credit.OverageHard, credit.StatusPartial, "1", held, heldGrant, "0", credit.DecisionAllowed, "5", "1:5", "0", "0", "", "", 0},
		{"fails: burns nothing", credit.OverageHard, credit.StatusFailed, "1", held, heldGrant, "0", credit.DecisionAllowed, "0", "", "0", "0", "", "", 0},
		{"overruns, the balance covers", credit.OverageHard, credit.StatusSucceeded, "2", held, heldGrant, "15", credit.DecisionAllowed, "20", "1:10 2:10", "0", "0", "", "", 0},
		{"overruns, HARD: the rest is uncovered", credit.OverageHard, credit.StatusSucceeded, "3", held, heldGrant, "15", credit.DecisionAllowed, "30", "1:10 2:15", "0", "5", "", credit.CodeUncovered, 0},
		{"overruns, no subscription: uncovered", "", credit.StatusSucceeded, "3", held, heldGrant, "15", credit.DecisionAllowed, "30", "1:10 2:15", "0", "5", "", credit.CodeUncovered, 0},
		{"overruns, SOFT: overage", credit.OverageSoft, credit.StatusSucceeded, "3", held, heldGrant, "15", credit.DecisionAllowed, "30", "1:10 2:15", "5", "0", "", "", 0},
		{"overruns, DEGRADED: waived", credit.OverageDegraded, credit.StatusSucceeded, "3", held, heldGrant, "15", credit.DecisionDegraded, "25", "1:10 2:15", "0", "0", "", "", 0},
		{"overruns, AUTO_TOP_UP: buy first", credit.OverageAutoTopUp, credit.StatusSucceeded, "3", held, heldGrant, "15", credit.DecisionDenied, "0", "1:10 2:15", "0", "5", "", "", 1},
		{"hold on a grant expired since: burns it, the rest expires", credit.OverageHard, credit.StatusPartial, "1", held, expired, "0", credit.DecisionAllowed, "5", "1:5", "0", "0", "1:5", "", 0},
		{"hold timed out: burns the balance", credit.OverageHard, credit.StatusSucceeded, "1", nil, heldGrant, "15", credit.DecisionAllowed, "10", "2:10", "0", "0", "", "", 0},
		{"hold timed out, nothing left: uncovered", credit.OverageHard, credit.StatusSucceeded, "1", nil, heldGrant, "0", credit.DecisionAllowed, "10", "", "0", "10", "", credit.CodeUncovered, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := ev("agent.run", tc.status)
			e.Quantity, e.Completion = d(tc.quantity), d("1")
			if tc.status == credit.StatusPartial {
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
			if tc.decision != credit.DecisionDenied && tc.code == "" && got.Decision == credit.DecisionDenied {
				t.Errorf("a terminal event was denied: %s", got.Reason)
			}
		})
	}
}

func TestUncoverAfterFailedTopUp(t *testing.T) {
	held := []engine.Draw{{GrantID: 1, Amount: d("10")}}
	tiers := [][]engine.Grant{{{ID: 1, Amount: d("10"), Remaining: d("0"), EffectiveAt: now.Add(-time.Hour)}}}
	e := ev("agent.run", credit.StatusSucceeded)
	e.Quantity = d("3")
	got, err := engine.SettleRun(context.Background(), runVersions(credit.OverageAutoTopUp), engine.Org{ID: 1}, e, held, tiers, now)
	if err != nil || got.TopUps == 0 {
		t.Fatalf("SettleRun = %+v, %v; want top-ups asked for", got, err)
	}
	u := engine.Uncover(got)
	if u.Decision != credit.DecisionAllowed || !u.Credits.Equal(d("30")) || !u.Uncovered.Equal(d("20")) || draws(u.Draws) != "1:10" {
		t.Errorf("Uncover = %s credits %s uncovered %s draws [%s]; want ALLOWED 30, 20 uncovered, 1:10", u.Decision, u.Credits, u.Uncovered, draws(u.Draws))
	}
}

func TestEarnsIncentive(t *testing.T) {
	plain := incentive(t, `decimal("0.5") * event.quantity`)
	failures := incentive(t, `event.status == "FAILED" ? decimal(1) : decimal(0)`)
	charged := engine.UsageDecision{Decision: credit.DecisionAllowed, Credits: d("5")}
	free := engine.UsageDecision{Decision: credit.DecisionAllowed, Credits: d("0")}
	tests := []struct {
		name string
		rule *engine.Rule
		ev   credit.UsageStatus
		d    engine.UsageDecision
		want bool
	}{
		{"no rule", nil, credit.StatusSucceeded, charged, false},
		{"a charging event", plain, credit.StatusSucceeded, charged, true},
		{"a free event", plain, credit.StatusSucceeded, free, false},
		{"a run's STARTED", plain, credit.StatusStarted, charged, false},
		{"DENIED", plain, credit.StatusSucceeded, engine.UsageDecision{Decision: credit.DecisionDenied, Credits: d("0")}, false},
		{"DEGRADED still charging", plain, credit.StatusSucceeded, engine.UsageDecision{Decision: credit.DecisionDegraded, Credits: d("2")}, true},
		{"uncovered run", plain, credit.StatusSucceeded, engine.UsageDecision{Decision: credit.DecisionAllowed, Credits: d("5"), Uncovered: d("1")}, false},
		{"FAILED, rule silent on status", plain, credit.StatusFailed, free, false},
		{"FAILED, rule reads event.status", failures, credit.StatusFailed, free, true},
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
	return &engine.Rule{ID: 1, Name: "i", Kind: credit.PolicyIncentive, Version: 1, Program: p}
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
		{ID: 1, CreditType: credit.CreditSubscription, Amount: d("100"), Remaining: d("30"), ExpiresAt: &start},
		{ID: 2, CreditType: credit.CreditOnDemand, Amount: d("10"), Remaining: d("4"), ExpiresAt: &start},
	}
	base := engine.PeriodTerms{Plan: "team", Pool: 9, RolloverMode: credit.RolloverNone, IncludedCredits: d("100"),
		PricePerCredit: d("0.01"), PlatformFee: d("49"), Currency: "USD", SubscriptionID: 3}
	capped := base
	capped.RolloverMode, capped.RolloverCap = credit.RolloverCapped, decimal.NewNullDecimal(d("20"))
	noFee := base
	noFee.PlatformFee = d("0")
	termEnd := func(t engine.PeriodTerms, rule credit.TermEndCredits, f func(*engine.PeriodTerms)) engine.PeriodTerms {
		t.TermEnd, t.TermEndCredits, t.RefundRate, t.TermStart = true, rule, d("0.5"), start.AddDate(0, -12, 0)
		if f != nil {
			f(&t)
		}
		return t
	}
	commit := func(spent string) func(*engine.PeriodTerms) {
		return func(t *engine.PeriodTerms) { t.Commitment, t.TermSpent = d("200"), d(spent) }
	}
	addOn := base
	addOn.AddOns = []engine.AddOnTerms{{ID: 4, Name: "boost", Credits: d("50"), Fee: d("10"), Currency: "USD", CreditType: credit.CreditOnDemand}}
	tests := []struct {
		name     string
		terms    engine.PeriodTerms
		running  bool
		borrowed string
		moves    string // "KIND grant amount" each
		open     string // "TYPE/KIND amount" each
		charges  string // "KIND amount" each
	}{
		{"NONE: everything ending expires", base, true, "0", "EXPIRE 1 -30, EXPIRE 2 -4", "SUBSCRIPTION/GRANT 100", "PLATFORM_FEE 49"},
		{"CAPPED: up to the cap rolls", capped, true, "0", "EXPIRE 1 -10, EXPIRE 2 -4, ROLLOVER_OUT 1 -20", "ROLLOVER/ROLLOVER_IN 20, SUBSCRIPTION/GRANT 100", "PLATFORM_FEE 49"},
		{"borrowed comes off the allocation", noFee, true, "30", "EXPIRE 1 -30, EXPIRE 2 -4", "SUBSCRIPTION/GRANT 70", ""},
		{"past the term: only the close", capped, false, "0", "EXPIRE 1 -30, EXPIRE 2 -4", "", ""},
		{"term end, ROLL: the rollover rules", termEnd(capped, credit.TermEndRoll, nil), true, "0", "EXPIRE 1 -10, EXPIRE 2 -4, ROLLOVER_OUT 1 -20", "ROLLOVER/ROLLOVER_IN 20, SUBSCRIPTION/GRANT 100", "PLATFORM_FEE 49"},
		{"term end, EXPIRE: nothing rolls", termEnd(capped, credit.TermEndExpire, nil), true, "0", "EXPIRE 1 -30, EXPIRE 2 -4", "SUBSCRIPTION/GRANT 100", "PLATFORM_FEE 49"},
		// 30 unused included x 0.5; the on-demand credits keep their own expiry.
		{"term end, REFUND: money back for included credits", termEnd(capped, credit.TermEndRefund, nil), true, "0", "REFUND 1 -30, EXPIRE 2 -4", "SUBSCRIPTION/GRANT 100", "TERM_REFUND -15, PLATFORM_FEE 49"},
		{"an ending term, REFUND", termEnd(capped, credit.TermEndRefund, nil), false, "0", "REFUND 1 -30, EXPIRE 2 -4", "", "TERM_REFUND -15"},
		{"term end, commitment short: true-up", termEnd(base, credit.TermEndRoll, commit("120")), true, "0", "EXPIRE 1 -30, EXPIRE 2 -4", "SUBSCRIPTION/GRANT 100", "TRUE_UP 80, PLATFORM_FEE 49"},
		{"term end, commitment met", termEnd(base, credit.TermEndRoll, commit("250")), true, "0", "EXPIRE 1 -30, EXPIRE 2 -4", "SUBSCRIPTION/GRANT 100", "PLATFORM_FEE 49"},
		{"an add-on each period", addOn, true, "0", "EXPIRE 1 -30, EXPIRE 2 -4", "SUBSCRIPTION/GRANT 100, ON_DEMAND/GRANT 50", "PLATFORM_FEE 49, ADD_ON 10"},
		{"no add-on past the term", addOn, false, "0", "EXPIRE 1 -30, EXPIRE 2 -4", "", ""},
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
			var charges []string
			for _, c := range po.Charges {
				charges = append(charges, fmt.Sprintf("%s %s", c.Kind, c.Amount))
			}
			if got := strings.Join(charges, ", "); got != tc.charges || po.Org != 5 {
				t.Errorf("charges = %s (org %d), want %s of organisation 5", got, po.Org, tc.charges)
			}
		})
	}
}
