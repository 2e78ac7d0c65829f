package engine

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
)

// Add-ons: recurring packs attached to a subscription. Each period that
// starts with an add-on attached grants its credits (of its credit type,
// ending with the period or after its own expiry) and bills its fee, an
// ADD_ON charge, in the period's opening posting. Attaching mid-period
// grants credits x f and bills fee x f, f the fraction of the period left
// (by time, as plan changes prorate); removing mid-period takes credits x
// f back, only from what is unused of the add-on's credits of the period
// (ADJUSTMENT entries), and gives fee x f back (a negative ADD_ON charge
// referencing the period's) in the share of those credits it could take
// back: attaching, burning and removing at once buys nothing free.
// Credits and money to 4 places.

// AddOnTerms is an add-on attached to a subscription.
type AddOnTerms struct {
	ID         int // the attachment (SubscriptionAddOn)
	Name       string
	Credits    decimal.Decimal
	Fee        decimal.Decimal
	Currency   string
	CreditType credit.CreditType
	ExpiryDays *int // nil: the credits end with the period
}

// AddOnRequest is attaching or removing an add-on now, mid-period.
type AddOnRequest struct {
	Org, Pool, SubscriptionID int
	AddOn                     AddOnTerms
	PeriodStart, PeriodEnd    time.Time
	Now                       time.Time
	// Removing: the add-on's grants of the current period, read under the
	// pool's lock, and its charge for the period (nil: none billed).
	Grants []Grant
	Charge *int
}

// AddOnChange is an add-on attached or removed, decided.
type AddOnChange struct {
	Posting
	Fraction decimal.Decimal
	Credits  decimal.Decimal // granted (+) or taken back (-)
	Fee      decimal.Decimal // billed (+) or given back (-)
}

// PeriodLeft is the fraction of [start, end) left at now, to 10 places.
func PeriodLeft(start, end, now time.Time) decimal.Decimal {
	return decimal.NewFromInt(int64(end.Sub(now))).DivRound(decimal.NewFromInt(int64(end.Sub(start))), 10)
}

// AttachAddOn decides attaching an add-on at req.Now.
func AttachAddOn(req AddOnRequest) (AddOnChange, error) {
	if req.Now.Before(req.PeriodStart) || !req.Now.Before(req.PeriodEnd) {
		return AddOnChange{}, fmt.Errorf("add-on at %s outside the period [%s, %s)", req.Now, req.PeriodStart, req.PeriodEnd)
	}
	f := PeriodLeft(req.PeriodStart, req.PeriodEnd, req.Now)
	out := AddOnChange{Posting: Posting{Org: req.Org}, Fraction: f}
	out.Credits, out.Fee = attachAddOn(&out.Posting, req.AddOn, req.Pool, req.SubscriptionID, req.PeriodStart, req.PeriodEnd, req.Now, f)
	return out, nil
}

// attachAddOn opens the add-on's credits x f from `from` and bills fee x f
// for the period starting at periodStart; it returns both.
func attachAddOn(p *Posting, a AddOnTerms, pool, sub int, periodStart, periodEnd, from time.Time, f decimal.Decimal) (decimal.Decimal, decimal.Decimal) {
	credits, fee := a.Credits.Mul(f).Round(changePlaces), a.Fee.Mul(f).Round(changePlaces)
	memo := fmt.Sprintf("add-on %s", a.Name)
	if !f.Equal(decimal.NewFromInt(1)) {
		memo += fmt.Sprintf(", %s of the period", f)
	}
	var opening *int
	if credits.IsPositive() {
		exp := periodEnd
		if a.ExpiryDays != nil {
			exp = from.AddDate(0, 0, *a.ExpiryDays)
		}
		price := decimal.Zero
		if a.Credits.IsPositive() {
			price = a.Fee.DivRound(a.Credits, 10)
		}
		i := len(p.Open)
		opening = &i
		p.Open = append(p.Open, Opening{Pool: pool, CreditType: a.CreditType, Amount: credits, UnitPrice: price, EffectiveAt: from,
			ExpiresAt: &exp, Kind: credit.EntryGrant, Memo: memo})
	}
	if fee.IsPositive() || opening != nil {
		id, at := a.ID, periodStart
		p.Charges = append(p.Charges, Charge{Kind: "ADD_ON", Credits: credits, Amount: fee, Currency: a.Currency, SubscriptionID: &sub,
			PeriodStart: &at, Opening: opening, AddOn: &id, Memo: memo})
	}
	return credits, fee
}

// DetachAddOn decides removing an add-on at req.Now.
func DetachAddOn(req AddOnRequest) (AddOnChange, error) {
	if req.Now.Before(req.PeriodStart) || !req.Now.Before(req.PeriodEnd) {
		return AddOnChange{}, fmt.Errorf("add-on removal at %s outside the period [%s, %s)", req.Now, req.PeriodStart, req.PeriodEnd)
	}
	f := PeriodLeft(req.PeriodStart, req.PeriodEnd, req.Now)
	out := AddOnChange{Posting: Posting{Org: req.Org}, Fraction: f, Credits: decimal.Zero, Fee: decimal.Zero}
	if req.Charge == nil {
		return out, nil // attached after this period started and billed nothing for it
	}
	memo := fmt.Sprintf("add-on %s removed, %s of the period", req.AddOn.Name, f)
	want, taken := req.AddOn.Credits.Mul(f).Round(changePlaces), decimal.Zero
	for _, g := range req.Grants {
		if x := decimal.Min(want.Sub(taken), g.Remaining); x.IsPositive() {
			out.Moves = append(out.Moves, Move{Pool: req.Pool, Grant: g.ID, Kind: credit.EntryAdjustment, Amount: x.Neg(), Memo: memo})
			taken = taken.Add(x)
		}
	}
	out.Credits = taken.Neg()
	fee := req.AddOn.Fee.Mul(f)
	if want.IsPositive() {
		fee = fee.Mul(taken).Div(want) // money back only for the credits given back
	}
	if fee = fee.Round(changePlaces); fee.IsPositive() {
		id, at, sub := req.AddOn.ID, req.PeriodStart, req.SubscriptionID
		out.Fee = fee.Neg()
		out.Charges = []Charge{{Kind: "ADD_ON", Credits: out.Credits, Amount: out.Fee, Currency: req.AddOn.Currency, SubscriptionID: &sub,
			PeriodStart: &at, AddOn: &id, RefundOf: req.Charge, Memo: memo}}
	}
	return out, nil
}
