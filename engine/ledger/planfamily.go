package ledger

import (
	"context"
	"sort"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/plan"
)

// PlanFamily is the tiers of one family (good / better / best), lowest
// first, with the levers that change across them.
type PlanFamily struct {
	Name   string
	Plans  []*ent.Plan
	Levers []Lever
}

// Lever is one plan term across a family's tiers: its value per tier
// ("" where a tier has none) and whether it grows with the tier (never
// falls, and rises at least once).
type Lever struct {
	Name   string
	Values []string
	Grows  bool
}

// levers are the plan terms a family compares, each as a number per plan
// (nil: the plan has none).
var levers = []struct {
	name string
	of   func(*ent.Plan) *decimal.Decimal
}{
	{"includedCredits", func(p *ent.Plan) *decimal.Decimal { return &p.IncludedCredits }},
	{"platformFee", func(p *ent.Plan) *decimal.Decimal { return &p.PlatformFee }},
	{"pricePerCredit", func(p *ent.Plan) *decimal.Decimal { return &p.PricePerCredit }},
	{"rolloverCap", func(p *ent.Plan) *decimal.Decimal { return nullPtr(p.RolloverCap) }},
	{"autoTopUpCredits", func(p *ent.Plan) *decimal.Decimal { return nullPtr(p.AutoTopUpCredits) }},
	{"borrowLimit", func(p *ent.Plan) *decimal.Decimal { return nullPtr(p.BorrowLimit) }},
	{"memberLimit", func(p *ent.Plan) *decimal.Decimal { return nullPtr(p.MemberLimit) }},
	{"incentiveCapPerMember", func(p *ent.Plan) *decimal.Decimal { return nullPtr(p.IncentiveCapPerMember) }},
	{"seedCredits", func(p *ent.Plan) *decimal.Decimal { return nullPtr(p.SeedCredits) }},
	{"entitledActions", func(p *ent.Plan) *decimal.Decimal {
		if p.EntitledActions == nil {
			return nil // every action
		}
		n := decimal.NewFromInt(int64(len(p.EntitledActions)))
		return &n
	}},
}

func nullPtr(d decimal.NullDecimal) *decimal.Decimal {
	if !d.Valid {
		return nil
	}
	return &d.Decimal
}

// PlanFamilies lists the plan families by name, each with its tiers and
// levers.
func (s *Service) PlanFamilies(ctx context.Context) ([]PlanFamily, error) {
	ps, err := s.db.Client.Plan.Query().Where(plan.FamilyNEQ(""), plan.TierNotNil()).All(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Family != ps[j].Family {
			return ps[i].Family < ps[j].Family
		}
		return *ps[i].Tier < *ps[j].Tier || *ps[i].Tier == *ps[j].Tier && ps[i].ID < ps[j].ID
	})
	var out []PlanFamily
	for _, p := range ps {
		if len(out) == 0 || out[len(out)-1].Name != p.Family {
			out = append(out, PlanFamily{Name: p.Family})
		}
		f := &out[len(out)-1]
		f.Plans = append(f.Plans, p)
	}
	for i := range out {
		out[i].Levers = familyLevers(out[i].Plans)
	}
	return out, nil
}

func familyLevers(ps []*ent.Plan) []Lever {
	var out []Lever
	for _, l := range levers {
		lv := Lever{Name: l.name, Values: make([]string, len(ps))}
		rises, falls := false, false
		var prev *decimal.Decimal
		for i, p := range ps {
			v := l.of(p)
			if v != nil {
				lv.Values[i] = v.String()
			} else if l.name == "entitledActions" {
				lv.Values[i] = "all"
			}
			switch {
			case i == 0:
			case v == nil && prev == nil:
			case v == nil || prev == nil:
				rises = rises || v == nil && l.name == "entitledActions" || v != nil
				falls = falls || v == nil && l.name != "entitledActions"
			case v.GreaterThan(*prev):
				rises = true
			case v.LessThan(*prev):
				falls = true
			}
			prev = v
		}
		lv.Grows = rises && !falls
		out = append(out, lv)
	}
	return out
}
