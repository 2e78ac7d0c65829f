package ledger

import (
	"context"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
)

// QuoteInput asks the credit calculator what an action mix costs for one
// period of a plan: for an organisation (its segment reaches weight
// expressions) or for a prospect (OrganizationID nil).
type QuoteInput struct {
	PlanID         int
	Usage          []engine.ActionCount
	OrganizationID *int
}

// Quote prices in.Usage under the plan with the register version in effect
// now for the plan's register (engine.Quote). It writes nothing.
func (s *Service) Quote(ctx context.Context, in QuoteInput) (engine.Quotation, error) {
	pl, err := s.db.Client.Plan.Get(ctx, in.PlanID)
	if ent.IsNotFound(err) {
		return engine.Quotation{}, credit.NotFound("plan", in.PlanID)
	} else if err != nil {
		return engine.Quotation{}, err
	}
	org := engine.Org{}
	if in.OrganizationID != nil {
		o, err := s.Organization(ctx, *in.OrganizationID)
		if err != nil || o == nil {
			return engine.Quotation{}, errOr(err, credit.NotFound("organization", *in.OrganizationID))
		}
		org = engine.Org{ID: o.ID, Segment: o.Segment}
	}
	snap, err := s.catalog.current(ctx)
	if err != nil {
		return engine.Quotation{}, err
	}
	now := s.Now()
	v, err := snap.versions(pl.RegisterName, nil, now)
	if err != nil {
		return engine.Quotation{}, err
	}
	return engine.Quote(ctx, v.Register, quoteTerms(pl, org.Segment), in.Usage, org, now)
}

// quoteTerms is what the calculator needs of a plan, at the prices of
// segment (a prospect's: "" for the plan's own).
func quoteTerms(p *ent.Plan, segment string) engine.QuoteTerms {
	prices := planPrices(p, segment)
	t := engine.QuoteTerms{Plan: p.Name, IncludedCredits: p.IncludedCredits, PricePerCredit: prices.PerCredit, PlatformFee: p.PlatformFee,
		Currency: p.Currency, OverageMode: p.OverageMode, OveragePrice: prices.Overage, TopUpThreshold: p.AutoTopUpThreshold.Decimal,
		TopUpCredits: p.AutoTopUpCredits.Decimal, OnDemandPrice: prices.OnDemand.Decimal, TopUpCap: -1, BorrowLimit: p.BorrowLimit.Decimal,
		OverageTiers: p.OverageTiers, OnDemandTiers: p.OnDemandTiers}
	if p.AutoTopUpCap != nil {
		t.TopUpCap = *p.AutoTopUpCap
	}
	return t
}
