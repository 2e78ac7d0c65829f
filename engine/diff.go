package engine

import (
	"sort"

	"github.com/shopspring/decimal"
)

// Register diffs and value checks: what a new version of a weight
// register changes, action by action, and whether each action's price
// sits where the value model says it should, per price point (a plan, or
// a plan's segment price): value per action > price per credit x credits
// > cost per action.
//
//   - UNDERWATER: the price is below the cost per action;
//   - COST_ANCHORED: the price is within 10% above the cost and under half
//     the value (weights set from cost, leaving the value on the table);
//   - ABOVE_VALUE: the price is above the value per action;
//   - NO_VALUE_MODEL: the action has no value or no cost per action.
//
// An expression weight is checked at its base credits. A version changes
// what existing subscribers pay (a price change, which needs the notice
// period) when it removes or re-weights an action; adding one does not.

// WeightTerms is one action of a register version.
type WeightTerms struct {
	Action      string
	Credits     decimal.Decimal
	Expression  string
	Value, Cost decimal.NullDecimal
}

// PricePoint is a price per credit actions are sold at: a plan's, or one of
// its segment prices.
type PricePoint struct {
	Plan, Segment  string
	PricePerCredit decimal.Decimal
}

// Economics is one action at one price point.
type Economics struct {
	PricePoint
	Price          decimal.Decimal     // price per credit x credits
	ValuePerCredit decimal.NullDecimal // value per action / credits
	Margin         decimal.NullDecimal // price - cost per action
	Check          string              // OK, UNDERWATER, COST_ANCHORED, ABOVE_VALUE, NO_VALUE_MODEL
}

// ActionDiff is one action's change.
type ActionDiff struct {
	Action    string
	Change    string // ADDED, REMOVED, REWEIGHTED, UNCHANGED
	Old, New  *WeightTerms
	Economics []Economics // of the new version (the old, for REMOVED)
}

// RegisterDiff is the change from one version to another.
type RegisterDiff struct {
	Actions     []ActionDiff // by action
	PriceChange bool         // an action removed or re-weighted
	Violations  int          // economics that are not OK (but NO_VALUE_MODEL)
}

// Value-check thresholds.
var (
	costAnchoredAbove = decimal.RequireFromString("1.1")
	costAnchoredValue = decimal.RequireFromString("0.5")
)

// DiffRegisters compares two versions' weights at the price points.
func DiffRegisters(old, new []WeightTerms, points []PricePoint) RegisterDiff {
	byAction := func(ws []WeightTerms) map[string]*WeightTerms {
		m := map[string]*WeightTerms{}
		for i := range ws {
			m[ws[i].Action] = &ws[i]
		}
		return m
	}
	o, n := byAction(old), byAction(new)
	actions := map[string]bool{}
	for a := range o {
		actions[a] = true
	}
	for a := range n {
		actions[a] = true
	}
	names := make([]string, 0, len(actions))
	for a := range actions {
		names = append(names, a)
	}
	sort.Strings(names)
	var out RegisterDiff
	for _, a := range names {
		d := ActionDiff{Action: a, Old: o[a], New: n[a]}
		terms := d.New
		switch {
		case d.Old == nil:
			d.Change = "ADDED"
		case d.New == nil:
			d.Change, terms, out.PriceChange = "REMOVED", d.Old, true
		case !d.Old.Credits.Equal(d.New.Credits) || d.Old.Expression != d.New.Expression:
			d.Change, out.PriceChange = "REWEIGHTED", true
		default:
			d.Change = "UNCHANGED"
		}
		for _, p := range points {
			e := Economize(*terms, p)
			if e.Check != "OK" && e.Check != "NO_VALUE_MODEL" && d.Change != "REMOVED" {
				out.Violations++
			}
			d.Economics = append(d.Economics, e)
		}
		out.Actions = append(out.Actions, d)
	}
	return out
}

// Economize prices one action at a price point and checks it.
func Economize(w WeightTerms, p PricePoint) Economics {
	e := Economics{PricePoint: p, Price: p.PricePerCredit.Mul(w.Credits)}
	if w.Value.Valid && w.Credits.IsPositive() {
		e.ValuePerCredit = decimal.NewNullDecimal(w.Value.Decimal.DivRound(w.Credits, 6))
	}
	if w.Cost.Valid {
		e.Margin = decimal.NewNullDecimal(e.Price.Sub(w.Cost.Decimal))
	}
	switch {
	case !w.Value.Valid || !w.Cost.Valid:
		e.Check = "NO_VALUE_MODEL"
	case e.Price.LessThan(w.Cost.Decimal):
		e.Check = "UNDERWATER"
	case !e.Price.GreaterThan(w.Cost.Decimal.Mul(costAnchoredAbove)) && e.Price.LessThan(w.Value.Decimal.Mul(costAnchoredValue)):
		e.Check = "COST_ANCHORED"
	case e.Price.GreaterThan(w.Value.Decimal):
		e.Check = "ABOVE_VALUE"
	default:
		e.Check = "OK"
	}
	return e
}
