package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/rules"
)

func nd(s string) decimal.NullDecimal { return decimal.NewNullDecimal(d(s)) }

// Which thresholds each kind of alert rule takes.
func TestAlertRuleValidate(t *testing.T) {
	for _, c := range []struct {
		kind      credit.AlertKind
		threshold string
		share     bool
		field     string // "" valid
	}{
		{credit.AlertBalanceBelow, "500", false, ""},
		{credit.AlertBalanceBelow, "0.2", true, ""},
		{credit.AlertBalanceBelow, "1.5", true, "threshold"},
		{credit.AlertBalanceBelow, "", false, "threshold"},
		{credit.AlertBalanceBelow, "-1", false, "threshold"},
		{credit.AlertExpiringWithin, "7", false, ""},
		{credit.AlertExpiringWithin, "7.5", false, "threshold"},
		{credit.AlertExpiringWithin, "0", false, "threshold"},
		{credit.AlertExpiringWithin, "400", false, "threshold"},
		{credit.AlertBurnRateAbove, "2", false, ""},
		{credit.AlertBurnRateAbove, "0.5", false, "threshold"},
		{credit.AlertBudgetReached, "", false, ""},
		{credit.AlertBudgetReached, "0.8", false, ""},
		{credit.AlertBudgetReached, "0", false, "threshold"},
		{credit.AlertBudgetReached, "0.8", true, "share"},
		{credit.AlertDepletionProjected, "14", false, ""},
		{credit.AlertTopUpDenied, "", false, ""},
		{credit.AlertRunUncovered, "3", false, "threshold"},
		{credit.AlertPolicy, "", false, "kind"},
		{credit.AlertWebhookDisabled, "", false, "kind"},
		{"NOPE", "", false, "kind"},
	} {
		r := engine.AlertRule{Kind: c.kind, Share: c.share}
		if c.threshold != "" {
			r.Threshold = nd(c.threshold)
		}
		err := r.Validate()
		var field string
		if e, ok := err.(*credit.Error); ok {
			field = e.Field
		}
		if field != c.field || (c.field == "") != (err == nil) {
			t.Errorf("%s %q share=%v: %v, want field %q", c.kind, c.threshold, c.share, err, c.field)
		}
	}
}

// Each kind's condition on hand-made facts, and the period it fires in.
func TestCheckAlert(t *testing.T) {
	period := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	in := func(days int) *time.Time { x := now.AddDate(0, 0, days); return &x }
	base := engine.AlertFacts{Now: now, PeriodStart: period, Available: d("300"), Allowance: d("1000"), BurnToday: d("50"), BurnUsual: d("40"),
		Expiring:     []engine.Expiry{{At: *in(5), Credits: d("120")}, {At: *in(20), Credits: d("80")}},
		Budget:       &engine.BudgetFacts{Amount: d("1000"), Spent: d("850"), PeriodStart: period},
		Uncovered:    []time.Time{now.Add(-time.Hour)},
		TopUpsDenied: []time.Time{period.Add(-time.Hour)}, // before the period: does not count
		DepletesAt:   in(6)}
	created := now.Add(-24 * time.Hour)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name      string
		kind      credit.AlertKind
		threshold string
		share     bool
		facts     func(*engine.AlertFacts)
		fires     bool
		period    time.Time
	}{
		{"balance 300 below 500", credit.AlertBalanceBelow, "500", false, nil, true, period},
		{"balance 300 not below 300", credit.AlertBalanceBelow, "300", false, nil, false, period},
		{"below a share: 300 < 0.5 x 1000", credit.AlertBalanceBelow, "0.5", true, nil, true, period},
		{"a share without allowance never fires", credit.AlertBalanceBelow, "0.5", true, func(f *engine.AlertFacts) { f.Allowance = d("0") }, false, period},
		{"120 credits expire within 7 days", credit.AlertExpiringWithin, "7", false, nil, true, period},
		{"nothing expires within 3 days", credit.AlertExpiringWithin, "3", false, nil, false, period},
		{"50 today > 1.2 x 40", credit.AlertBurnRateAbove, "1.2", false, nil, true, today},
		{"50 today not > 2 x 40", credit.AlertBurnRateAbove, "2", false, nil, false, today},
		{"no usual burn: never", credit.AlertBurnRateAbove, "1", false, func(f *engine.AlertFacts) { f.BurnUsual = d("0") }, false, today},
		{"850 of 1000 >= 0.8", credit.AlertBudgetReached, "0.8", false, nil, true, period},
		{"850 of 1000 < the whole budget", credit.AlertBudgetReached, "", false, nil, false, period},
		{"no budget", credit.AlertBudgetReached, "", false, func(f *engine.AlertFacts) { f.Budget = nil }, false, period},
		{"runs out in 6 days, within 7", credit.AlertDepletionProjected, "7", false, nil, true, period},
		{"runs out in 6 days, not within 5", credit.AlertDepletionProjected, "5", false, nil, false, period},
		{"no run-out projected", credit.AlertDepletionProjected, "30", false, func(f *engine.AlertFacts) { f.DepletesAt = nil }, false, period},
		{"an uncovered run this period", credit.AlertRunUncovered, "", false, nil, true, period},
		{"a denied top-up before the period", credit.AlertTopUpDenied, "", false, nil, false, period},
		{"a denied top-up this period", credit.AlertTopUpDenied, "", false, func(f *engine.AlertFacts) { f.TopUpsDenied = []time.Time{now} }, true, period},
		{"an uncovered run before the rule existed", credit.AlertRunUncovered, "", false, func(f *engine.AlertFacts) { f.Uncovered = []time.Time{created.Add(-time.Hour)} }, false, period},
	} {
		f := base
		if c.facts != nil {
			c.facts(&f)
		}
		r := engine.AlertRule{ID: 1, Kind: c.kind, Share: c.share, CreatedAt: created}
		if c.threshold != "" {
			r.Threshold = nd(c.threshold)
		}
		got := engine.CheckAlert(r, f)
		if (got != nil) != c.fires {
			t.Errorf("%s: fired %+v, want %v", c.name, got, c.fires)
		} else if got != nil && (!got.PeriodStart.Equal(c.period) || got.Message == "") {
			t.Errorf("%s: %+v, want period %s and a message", c.name, got, c.period)
		}
	}
}

// An ALERT policy sees the pool's facts.
func TestCheckAlertPolicy(t *testing.T) {
	p, err := rules.Compile(rules.KindAlert, `poolKind == "ACCOUNT" && available < allowance * decimal("0.1") && depletionDays >= decimal(0) && depletionDays < decimal(3)`)
	if err != nil {
		t.Fatal(err)
	}
	rule := &engine.Rule{ID: 1, Name: "low-and-falling", Kind: credit.PolicyAlert, Version: 2, Program: p}
	soon := now.Add(36 * time.Hour)
	f := engine.AlertFacts{Now: now, PeriodStart: now, PoolKind: credit.PoolAccount, Available: d("50"), Allowance: d("1000"), DepletesAt: &soon}
	if fr, err := engine.CheckAlertPolicy(context.Background(), rule, f, engine.Org{ID: 1}); err != nil || fr == nil {
		t.Fatalf("policy on a low pool = %+v, %v; want it to fire", fr, err)
	}
	f.DepletesAt = nil // depletionDays -1
	if fr, err := engine.CheckAlertPolicy(context.Background(), rule, f, engine.Org{ID: 1}); err != nil || fr != nil {
		t.Fatalf("policy without a run-out = %+v, %v; want nothing", fr, err)
	}
	if _, err := rules.Compile(rules.KindAlert, `available`); err == nil {
		t.Fatal("an ALERT rule returning a decimal compiled")
	}
}
