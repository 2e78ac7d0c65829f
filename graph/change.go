package graph

import (
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/graph/model"
)

// registerDiff is an engine.RegisterDiff in the API's shape.
func registerDiff(name string, d engine.RegisterDiff, old, nu *ent.WeightRegister) *model.RegisterDiff {
	out := &model.RegisterDiff{Name: name, ToVersion: nu.Version, PriceChange: d.PriceChange, Violations: d.Violations}
	if old != nil {
		v := old.Version
		out.FromVersion = &v
	}
	terms := func(w *engine.WeightTerms) *model.WeightTerms {
		if w == nil {
			return nil
		}
		return &model.WeightTerms{Credits: w.Credits, Expression: nonEmpty(w.Expression), ValuePerAction: nullDecimal(w.Value), CostPerAction: nullDecimal(w.Cost)}
	}
	for _, a := range d.Actions {
		ad := &model.ActionDiff{Action: a.Action, Change: a.Change, Old: terms(a.Old), New: terms(a.New)}
		for _, e := range a.Economics {
			ad.Economics = append(ad.Economics, &model.ActionEconomics{Plan: e.Plan, Segment: nonEmpty(e.Segment), PricePerCredit: e.PricePerCredit,
				Price: e.Price, ValuePerCredit: nullDecimal(e.ValuePerCredit), Margin: nullDecimal(e.Margin), Check: e.Check})
		}
		if ad.Economics == nil {
			ad.Economics = []*model.ActionEconomics{}
		}
		out.Actions = append(out.Actions, ad)
	}
	return out
}
