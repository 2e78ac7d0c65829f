package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/rules"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func at(days int) *time.Time { t := now.Add(time.Duration(days) * 24 * time.Hour); return &t }

func rule(t *testing.T, kind credit.PolicyKind, expr string) *engine.Rule {
	t.Helper()
	k := map[credit.PolicyKind]rules.Kind{credit.PolicyBurn: rules.KindBurn, credit.PolicyDrawOrder: rules.KindDrawOrder}[kind]
	p, err := rules.Compile(k, expr)
	if err != nil {
		t.Fatalf("Compile(%q): %v", expr, err)
	}
	return &engine.Rule{ID: 1, Name: "test", Kind: kind, Version: 1, Program: p}
}

func register(t *testing.T) *engine.Register {
	t.Helper()
	pages, err := rules.Compile(rules.KindWeight, `decimal(1) + decimal(event.properties.pages) * decimal("0.25")`)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Register{ID: 7, Name: "default", Version: 3, Weights: map[string]*engine.Weight{
		"agent.run":     {Action: "agent.run", Credits: d("10")},
		"web.search":    {Action: "web.search", Credits: d("0.5")},
		"doc.summarize": {Action: "doc.summarize", Expression: pages},
	}}
}

func ev(action string, status credit.UsageStatus) engine.Event {
	return engine.Event{Action: action, Status: status, Quantity: d("1"), Completion: d("1"), Attempt: 1, OccurredAt: now}
}

func TestWeightOf(t *testing.T) {
	reg := register(t)
	withPages := ev("doc.summarize", credit.StatusSucceeded)
	withPages.Properties = map[string]any{"pages": float64(8)}
	tests := []struct {
		name string
		reg  *engine.Register
		ev   engine.Event
		want string
		code credit.Code
	}{
		{"fixed weight", reg, ev("agent.run", credit.StatusSucceeded), "10", ""},
		{"fractional weight", reg, ev("web.search", credit.StatusSucceeded), "0.5", ""},
		{"expression over properties", reg, withPages, "3", ""},
		{"missing property is a rule runtime error", reg, ev("doc.summarize", credit.StatusSucceeded), "", credit.CodeRuleRuntime},
		{"unknown action", reg, ev("nope", credit.StatusSucceeded), "", credit.CodeUnknownAction},
		{"no register in effect", nil, ev("agent.run", credit.StatusSucceeded), "", credit.CodeNoRegister},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.WeightOf(context.Background(), tc.reg, tc.ev, engine.Org{ID: 1}, now)
			if tc.code != "" {
				if credit.CodeOf(err) != tc.code {
					t.Fatalf("WeightOf(%s) error = %v, want code %s", tc.ev.Action, err, tc.code)
				}
				return
			}
			if err != nil || !got.Equal(d(tc.want)) {
				t.Fatalf("WeightOf(%s) = %s, %v, want %s", tc.ev.Action, got, err, tc.want)
			}
		})
	}
}

func TestBurn(t *testing.T) {
	partialOnFailure := rule(t, credit.PolicyBurn,
		`event.status == "SUCCEEDED" ? weight * event.quantity : (event.status == "FAILED" ? weight * decimal("0.2") : decimal(0))`)
	divByZero := rule(t, credit.PolicyBurn, `weight / decimal(0)`)
	negative := rule(t, credit.PolicyBurn, `decimal(0) - weight`)
	mk := func(status credit.UsageStatus, qty, completion string) engine.Event {
		e := ev("agent.run", status)
		e.Quantity, e.Completion = d(qty), d(completion)
		return e
	}
	tests := []struct {
		name   string
		rule   *engine.Rule
		weight string
		ev     engine.Event
		want   string
		code   credit.Code
	}{
		{"default: success charges weight x quantity", nil, "10", mk(credit.StatusSucceeded, "3", "1"), "30", ""},
		{"default: failure charges nothing", nil, "10", mk(credit.StatusFailed, "3", "1"), "0", ""},
		{"default: started charges nothing", nil, "10", mk(credit.StatusStarted, "3", "1"), "0", ""},
		{"default: partial is pro-rated", nil, "10", mk(credit.StatusPartial, "3", "0.35"), "10.5", ""},
		{"default: exact decimals", nil, "0.1", mk(credit.StatusSucceeded, "3", "1"), "0.3", ""},
		{"rule: success", partialOnFailure, "10", mk(credit.StatusSucceeded, "2", "1"), "20", ""},
		{"rule: failure charges 20 %", partialOnFailure, "10", mk(credit.StatusFailed, "2", "1"), "2", ""},
		{"rule: partial charges nothing", partialOnFailure, "10", mk(credit.StatusPartial, "2", "0.5"), "0", ""},
		{"rule: division by zero", divByZero, "10", mk(credit.StatusSucceeded, "1", "1"), "", credit.CodeRuleRuntime},
		{"rule: negative result", negative, "10", mk(credit.StatusSucceeded, "1", "1"), "", credit.CodeRuleRuntime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.BurnOf(context.Background(), tc.rule, d(tc.weight), tc.ev, engine.Org{ID: 1}, now)
			if tc.code != "" {
				if credit.CodeOf(err) != tc.code {
					t.Fatalf("BurnOf error = %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil || !got.Equal(d(tc.want)) {
				t.Fatalf("BurnOf = %s, %v, want %s", got, err, tc.want)
			}
		})
	}
}

func grants() []engine.Grant {
	created := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
	return []engine.Grant{
		{ID: 1, CreditType: credit.CreditSubscription, Priority: 100, Remaining: d("50"), ExpiresAt: at(30), EffectiveAt: created(48), CreatedAt: created(48)},
		{ID: 2, CreditType: credit.CreditOnDemand, Priority: 100, Remaining: d("40"), EffectiveAt: created(24), CreatedAt: created(24)}, // no expiry
		{ID: 3, CreditType: credit.CreditIncentive, Priority: 100, Remaining: d("5"), ExpiresAt: at(30), EffectiveAt: created(12), CreatedAt: created(12)},
		{ID: 4, CreditType: credit.CreditPromotional, Priority: 100, Remaining: d("7"), ExpiresAt: at(3), EffectiveAt: created(6), CreatedAt: created(6)},
		{ID: 5, CreditType: credit.CreditService, Priority: 10, Remaining: d("2"), ExpiresAt: at(90), EffectiveAt: created(3), CreatedAt: created(3)},
		{ID: 6, CreditType: credit.CreditSubscription, Priority: 1, Remaining: d("100"), ExpiresAt: at(-1), EffectiveAt: created(72), CreatedAt: created(72)}, // expired
		{ID: 7, CreditType: credit.CreditSubscription, Priority: 1, Remaining: d("100"), ExpiresAt: at(60), EffectiveAt: *at(1), CreatedAt: created(1)},       // not yet effective
		{ID: 8, CreditType: credit.CreditSubscription, Priority: 1, Remaining: d("0"), ExpiresAt: at(60), EffectiveAt: created(80), CreatedAt: created(80)},   // empty
	}
}

func ids(gs []engine.Grant) []int {
	out := make([]int, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}

func TestOrderGrants(t *testing.T) {
	tests := []struct {
		name string
		rule *engine.Rule
		want []int
	}{
		// priority 10 first; then earliest expiry (4 in 3 days); 1 and 3 tie on
		// expiry so INCENTIVE (3) before SUBSCRIPTION (1); no expiry (2) last.
		{"default", nil, []int{5, 4, 3, 1, 2}},
		{"FEFO rule", rule(t, credit.PolicyDrawOrder, `[grant.priority, grant.expiresAt]`), []int{5, 4, 1, 3, 2}},
		{"FIFO rule", rule(t, credit.PolicyDrawOrder, `[grant.createdAt]`), []int{1, 2, 3, 4, 5}},
		{"LIFO rule", rule(t, credit.PolicyDrawOrder, `[-int(grant.createdAt)]`), []int{5, 4, 3, 2, 1}},
		{"incentives first then FEFO", rule(t, credit.PolicyDrawOrder, `[grant.creditType == "INCENTIVE" ? 0 : 1, grant.expiresAt]`), []int{3, 4, 1, 5, 2}},
		{"by type, then cheapest", rule(t, credit.PolicyDrawOrder, `[grant.creditType == "ON_DEMAND" ? 0 : 1, grant.unitPrice]`), []int{2, 1, 3, 4, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.OrderGrants(context.Background(), tc.rule, grants(), now)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); !equalInts(g, tc.want) {
				t.Fatalf("OrderGrants = %v, want %v", g, tc.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDecideUsage(t *testing.T) {
	v := engine.Versions{Register: register(t)}
	ctx := context.Background()
	tests := []struct {
		name     string
		action   string
		qty      string
		decision credit.Decision
		credits  string
		draws    []engine.Draw
	}{
		{"one grant", "web.search", "2", credit.DecisionAllowed, "1", []engine.Draw{{GrantID: 5, Amount: d("1")}}},
		{"split across grants", "agent.run", "1", credit.DecisionAllowed, "10",
			[]engine.Draw{{GrantID: 5, Amount: d("2")}, {GrantID: 4, Amount: d("7")}, {GrantID: 3, Amount: d("1")}}},
		{"everything usable", "web.search", "208", credit.DecisionAllowed, "104",
			[]engine.Draw{{5, d("2")}, {4, d("7")}, {3, d("5")}, {1, d("50")}, {2, d("40")}}},
		{"one credit too many is denied", "web.search", "210", credit.DecisionDenied, "0", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := ev(tc.action, credit.StatusSucceeded)
			e.Quantity = d(tc.qty)
			gs := grants()
			got, err := engine.DecideUsage(ctx, v, engine.Org{ID: 1}, e, gs, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.Decision != tc.decision || !got.Credits.Equal(d(tc.credits)) {
				t.Fatalf("DecideUsage = %s %s, want %s %s", got.Decision, got.Credits, tc.decision, tc.credits)
			}
			if len(got.Draws) != len(tc.draws) {
				t.Fatalf("draws = %v, want %v", got.Draws, tc.draws)
			}
			sum := decimal.Zero
			for i := range got.Draws {
				if got.Draws[i].GrantID != tc.draws[i].GrantID || !got.Draws[i].Amount.Equal(tc.draws[i].Amount) {
					t.Fatalf("draw %d = %v, want %v", i, got.Draws[i], tc.draws[i])
				}
				sum = sum.Add(got.Draws[i].Amount)
			}
			if tc.decision == credit.DecisionAllowed && !sum.Equal(got.Credits) {
				t.Fatalf("draws sum to %s, credits %s", sum, got.Credits)
			}
			if tc.decision == credit.DecisionDenied && (got.ReasonCode != credit.CodeInsufficientCredits || got.Reason == "") {
				t.Fatalf("denied without reason: %+v", got)
			}
			before := grants()
			engine.Apply(gs, got.Draws)
			for i := range gs {
				if gs[i].Remaining.IsNegative() {
					t.Fatalf("grant %d overdrawn: %s (was %s)", gs[i].ID, gs[i].Remaining, before[i].Remaining)
				}
			}
		})
	}
}

func TestDecideUsageZeroCreditsDrawsNothing(t *testing.T) {
	got, err := engine.DecideUsage(context.Background(), engine.Versions{Register: register(t)}, engine.Org{ID: 1},
		ev("agent.run", credit.StatusFailed), nil, now)
	if err != nil || got.Decision != credit.DecisionAllowed || !got.Credits.IsZero() || len(got.Draws) != 0 {
		t.Fatalf("failed run = %+v, %v; want allowed, 0 credits, no draws", got, err)
	}
}

func TestNormalize(t *testing.T) {
	q := func(s string) *decimal.Decimal { v := d(s); return &v }
	one, zero := 1, 0
	base := engine.UsageInput{IdempotencyKey: "k", OrganizationID: 1, Action: "agent.run"}
	tests := []struct {
		name  string
		edit  func(*engine.UsageInput)
		field string
	}{
		{"ok", func(*engine.UsageInput) {}, ""},
		{"empty key", func(in *engine.UsageInput) { in.IdempotencyKey = "" }, "idempotencyKey"},
		{"empty action", func(in *engine.UsageInput) { in.Action = "" }, "action"},
		{"zero quantity", func(in *engine.UsageInput) { in.Quantity = q("0") }, "quantity"},
		{"negative quantity", func(in *engine.UsageInput) { in.Quantity = q("-1") }, "quantity"},
		{"completion above 1", func(in *engine.UsageInput) { in.Completion = q("1.01") }, "completion"},
		{"attempt 0", func(in *engine.UsageInput) { in.Attempt = &zero }, "attempt"},
		{"attempt 1", func(in *engine.UsageInput) { in.Attempt = &one }, ""},
		{"future", func(in *engine.UsageInput) { in.OccurredAt = at(1) }, "occurredAt"},
		{"bad status", func(in *engine.UsageInput) { in.Status = "DONE" }, "status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.edit(&in)
			_, _, err := in.Normalize(now)
			var e *credit.Error
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Normalize: %v", err)
			case tc.field != "" && (!errors.As(err, &e) || e.Code != credit.CodeValidation || e.Field != tc.field):
				t.Fatalf("Normalize error = %v, want VALIDATION on %s", err, tc.field)
			}
		})
	}
}

func TestPayloadHash(t *testing.T) {
	one := d("1")
	a := engine.UsageInput{IdempotencyKey: "k", OrganizationID: 1, Action: "x", Properties: map[string]any{"a": 1.0, "b": "z"}}
	b := a
	b.Quantity = &one // explicit default is the same payload
	b.Status = credit.StatusSucceeded
	b.Properties = map[string]any{"b": "z", "a": 1.0}
	_, ha, _ := a.Normalize(now)
	_, hb, _ := b.Normalize(now.Add(time.Second))
	if ha != hb {
		t.Fatalf("same payload hashed differently: %s vs %s", ha, hb)
	}
	c := a
	c.Action = "y"
	if _, hc, _ := c.Normalize(now); hc == ha {
		t.Fatal("different action, same hash")
	}
}
