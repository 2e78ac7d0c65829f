package ledger

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/charge"
)

// The second dial in the ledger: a plan's flat prices, replaced per
// segment (engine.Prices.ForSegment), and graduated on-demand tiers
// counted from the on-demand credits the subscription bought this period.
// Overage tiers are applied by the usage batch (engine.PlanTerms.OverageMoney).

// planPrices is p's flat prices for an organisation of segment.
func planPrices(p *ent.Plan, segment string) engine.Prices {
	return engine.Prices{PerCredit: p.PricePerCredit, OnDemand: p.OnDemandPrice, Overage: p.OveragePrice}.ForSegment(segment, p.SegmentPrices)
}

// orgPrices is p's flat prices for the organisation org.
func orgPrices(ctx context.Context, c *ent.Client, p *ent.Plan, org int) (engine.Prices, error) {
	prices := planPrices(p, "")
	if len(p.SegmentPrices) == 0 {
		return prices, nil
	}
	o, err := c.Organization.Get(ctx, org)
	if err != nil {
		return prices, err
	}
	return planPrices(p, o.Segment), nil
}

// onDemandBought is the on-demand credits (purchases and auto top-ups, net
// of refunds) the subscription bought since from: where its next on-demand
// credit sits in the plan's tiers.
func onDemandBought(ctx context.Context, c *ent.Client, sub int, from time.Time) (decimal.Decimal, error) {
	chs, err := c.Charge.Query().Where(charge.SubscriptionID(sub), charge.KindIn("ON_DEMAND", "AUTO_TOP_UP"), charge.CreatedAtGTE(from)).All(ctx)
	if err != nil {
		return decimal.Zero, err
	}
	sum := decimal.Zero
	for _, ch := range chs {
		sum = sum.Add(ch.Credits)
	}
	return decimal.Max(sum, decimal.Zero), nil
}

// unitPrice is amount / credits, to 10 places (a grant's price per credit).
func unitPrice(amount, credits decimal.Decimal) decimal.Decimal {
	if !credits.IsPositive() {
		return decimal.Zero
	}
	return amount.DivRound(credits, 10)
}
