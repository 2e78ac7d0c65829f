package engine

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
)

// PriceTier is one band of a graduated price (credit.PriceTier). Tiers
// are graduated, as Stripe's are: each credit is priced by the band it
// falls in, counted from the period's first on-demand (or overage) credit,
// so a purchase that crosses a boundary pays both prices.
type PriceTier = credit.PriceTier

// MaxPriceTiers bounds the bands of one price.
const MaxPriceTiers = 20

// ValidateTiers checks a graduated price: the first band from 0, each next
// one from where the last ended (TIER_GAP if later, TIER_OVERLAP if
// earlier), every band non-empty, only the last without end, prices not
// negative. field names the input in errors; no tiers is valid (a flat
// price).
func ValidateTiers(field string, tiers []PriceTier) error {
	if len(tiers) > MaxPriceTiers {
		return credit.Invalid(field, "at most %d tiers, got %d", MaxPriceTiers, len(tiers))
	}
	next := decimal.Zero
	for i, t := range tiers {
		at := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case t.Price.IsNegative():
			return credit.Invalid(at+".price", "must not be negative, got %s", t.Price)
		case t.From.GreaterThan(next):
			return tierErr(credit.CodeTierGap, at, "starts at %s, but the tiers before end at %s: the credits between would have no price", t.From, next)
		case t.From.LessThan(next):
			return tierErr(credit.CodeTierOverlap, at, "starts at %s, inside the tier before (which ends at %s)", t.From, next)
		case t.UpTo == nil && i < len(tiers)-1:
			return tierErr(credit.CodeTierOverlap, at, "has no upper bound but is not the last tier")
		case t.UpTo == nil:
			return nil
		case !t.UpTo.GreaterThan(t.From):
			return tierErr(credit.CodeTierOverlap, at, "upTo %s must be above from %s", *t.UpTo, t.From)
		}
		next = *t.UpTo
	}
	if len(tiers) > 0 {
		return tierErr(credit.CodeTierGap, fmt.Sprintf("%s[%d]", field, len(tiers)-1), "the last tier must have no upper bound (omit upTo): credits past %s would have no price", next)
	}
	return nil
}

func tierErr(code credit.Code, field, format string, args ...any) error {
	e := credit.Errorf(code, format, args...)
	e.Field = field
	return e
}

// Prices are a plan's flat prices per credit: the value of included
// credits, on-demand packs and overage.
type Prices struct {
	PerCredit         decimal.Decimal
	OnDemand, Overage decimal.NullDecimal
}

// ForSegment is p with the prices the segment's entry sets, if any.
func (p Prices) ForSegment(segment string, by []credit.SegmentPrice) Prices {
	for _, sp := range by {
		if sp.Segment != segment || segment == "" {
			continue
		}
		if sp.PricePerCredit != nil {
			p.PerCredit = *sp.PricePerCredit
		}
		if sp.OnDemandPrice != nil {
			p.OnDemand = decimal.NewNullDecimal(*sp.OnDemandPrice)
		}
		if sp.OveragePrice != nil {
			p.Overage = decimal.NewNullDecimal(*sp.OveragePrice)
		}
	}
	return p
}

// Graduated is the money of qty more credits when before were already
// bought (or billed as overage) in the period, under valid tiers; with no
// tiers, qty x flat.
func Graduated(tiers []PriceTier, flat, before, qty decimal.Decimal) decimal.Decimal {
	if len(tiers) == 0 {
		return qty.Mul(flat)
	}
	total, from, to := decimal.Zero, before, before.Add(qty)
	for _, t := range tiers {
		lo, hi := decimal.Max(from, t.From), to
		if t.UpTo != nil {
			hi = decimal.Min(to, *t.UpTo)
		}
		if hi.GreaterThan(lo) {
			total = total.Add(hi.Sub(lo).Mul(t.Price))
		}
	}
	return total
}
