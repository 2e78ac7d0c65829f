package credit

import "github.com/shopspring/decimal"

// PriceTier is one band of a graduated price: the credits from From up to
// UpTo (nil: without end) of a billing period cost Price each (see
// engine.Graduated). Plans store their tiers as JSON.
type PriceTier struct {
	From  decimal.Decimal  `json:"from"`
	UpTo  *decimal.Decimal `json:"upTo,omitempty"`
	Price decimal.Decimal  `json:"price"`
}

// SegmentPrice replaces a plan's flat prices for the organisations of one
// segment (the second dial, per segment): each price that is set replaces
// the plan's flat one (a flat on-demand or overage price where the plan
// has tiers for it is refused: it would never apply).
type SegmentPrice struct {
	Segment        string           `json:"segment"`
	PricePerCredit *decimal.Decimal `json:"pricePerCredit,omitempty"`
	OnDemandPrice  *decimal.Decimal `json:"onDemandPrice,omitempty"`
	OveragePrice   *decimal.Decimal `json:"overagePrice,omitempty"`
}
