package engine_test

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/engine"
)

func wt(action, credits, value, cost string) engine.WeightTerms {
	w := engine.WeightTerms{Action: action, Credits: d(credits)}
	if value != "" {
		w.Value = decimal.NewNullDecimal(d(value))
	}
	if cost != "" {
		w.Cost = decimal.NewNullDecimal(d(cost))
	}
	return w
}

// Value checks at 0.01 a credit: value per action > price > cost.
func TestEconomize(t *testing.T) {
	p := engine.PricePoint{Plan: "team", PricePerCredit: d("0.01")}
	for _, c := range []struct {
		name  string
		w     engine.WeightTerms
		check string
		price string
	}{
		{"healthy: 10 credits at 0.01 = 0.1, value 1, cost 0.02", wt("a", "10", "1", "0.02"), "OK", "0.1"},
		{"underwater: 0.1 under a cost of 0.12", wt("a", "10", "1", "0.12"), "UNDERWATER", "0.1"},
		{"cost-anchored: 0.1 within 10% of 0.095, under half of 1", wt("a", "10", "1", "0.095"), "COST_ANCHORED", "0.1"},
		{"near cost but near value too: not anchored", wt("a", "10", "0.15", "0.095"), "OK", "0.1"},
		{"above the value", wt("a", "10", "0.05", "0.01"), "ABOVE_VALUE", "0.1"},
		{"no value model", wt("a", "10", "", "0.01"), "NO_VALUE_MODEL", "0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := engine.Economize(c.w, p)
			if e.Check != c.check || !e.Price.Equal(d(c.price)) {
				t.Fatalf("check %s price %s, want %s %s", e.Check, e.Price, c.check, c.price)
			}
		})
	}
}

func TestDiffRegisters(t *testing.T) {
	old := []engine.WeightTerms{wt("agent.run", "10", "1", "0.02"), wt("web.search", "1", "0.2", "0.001"), wt("gone", "1", "", "")}
	same := []engine.WeightTerms{wt("agent.run", "10", "1", "0.02"), wt("web.search", "1", "0.2", "0.001"), wt("gone", "1", "", "")}
	points := []engine.PricePoint{{Plan: "team", PricePerCredit: d("0.01")}, {Plan: "team", Segment: "enterprise", PricePerCredit: d("0.001")}}
	if d := engine.DiffRegisters(old, same, points); d.PriceChange || len(d.Actions) != 3 || d.Actions[0].Change != "UNCHANGED" {
		t.Fatalf("an unchanged version: %+v", d)
	}
	added := append(append([]engine.WeightTerms(nil), same...), wt("email.draft", "2", "1", "0.01"))
	if d := engine.DiffRegisters(old, added, points); d.PriceChange {
		t.Fatalf("adding an action is a price change: %+v", d)
	}
	// agent.run re-weighted to 12; gone removed; at the enterprise price
	// of 0.001 agent.run (0.012) is under its cost of 0.02: underwater.
	next := []engine.WeightTerms{wt("agent.run", "12", "1", "0.02"), wt("web.search", "1", "0.2", "0.001")}
	d := engine.DiffRegisters(old, next, points)
	if !d.PriceChange || d.Actions[0].Action != "agent.run" || d.Actions[0].Change != "REWEIGHTED" || d.Actions[1].Change != "REMOVED" {
		t.Fatalf("diff %+v", d.Actions)
	}
	if e := d.Actions[0].Economics[1]; e.Check != "UNDERWATER" || !e.Price.Equal(d12()) || e.Segment != "enterprise" {
		t.Fatalf("agent.run for enterprise: %+v", e)
	}
	if d.Violations == 0 {
		t.Fatal("no violation counted")
	}
}

func d12() decimal.Decimal { return d("0.012") }
