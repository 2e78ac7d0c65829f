package engine

import (
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
)

// Plan changes. An immediate change (changePlan at NOW) prorates by the
// fraction f of the current period left, by time: f = (end - now) / (end -
// start), to 10 places. What happens to the period's included credits is
// the ChangeCredits term of the plan left:
//
//   - PRORATE: what was granted stays; an upgrade grants (new - old
//     included) x f more, as a SUBSCRIPTION grant ending with the period;
//     a downgrade takes (old - new) x f back, only from what is unused
//     (ADJUSTMENT entries; credits a run holds are not unused);
//   - CARRY: as PRORATE, but a downgrade takes nothing back;
//   - FORFEIT: the unused included credits leave (ADJUSTMENT) and the new
//     plan's included x f arrives.
//
// The fee difference x f is a PRORATION charge (negative on a cheaper
// plan). Under PRORATE, money comes back only for the credits taken back:
// a downgrade that finds less unused than (old - new) x f gives back that
// share of the fee difference (else upgrading, burning the upgrade's
// credits and downgrading at once would get them for nothing). Credits and money are rounded to 4 places. Other credit types
// (rollover, purchased, incentive, promotional, service) are not touched.
// From the next period the new plan applies in full. A change at the
// period end posts nothing now: the period close opens the next period
// under the new plan.

// ChangePlanTerms is what a plan change needs of a plan.
type ChangePlanTerms struct {
	ID              int
	Name            string
	Period          credit.Period
	Currency        string
	IncludedCredits decimal.Decimal
	PricePerCredit  decimal.Decimal
	PlatformFee     decimal.Decimal
	ChangeCredits   credit.ChangeCredits
}

// PlanChangeRequest is an immediate plan change of a subscription.
type PlanChangeRequest struct {
	Org, Pool, SubscriptionID int
	From, To                  ChangePlanTerms
	PeriodStart, PeriodEnd    time.Time
	Now                       time.Time
	// Included is the pool's SUBSCRIPTION grants of the current period
	// (ending at PeriodEnd), as read under the pool's lock.
	Included []Grant
}

// PlanChange is a plan change decided: its posting and its totals.
type PlanChange struct {
	Posting
	Kind     string          // UPGRADE, DOWNGRADE or CHANGE (same included credits)
	Fraction decimal.Decimal // of the period left
	Credits  decimal.Decimal // included credits added (+) or taken back (-)
	Fee      decimal.Decimal // the PRORATION charge (0: none)
}

// changePlaces is the precision of prorated credits and money.
const changePlaces = 4

// ValidatePlanChange checks that from can change to to.
func ValidatePlanChange(from, to ChangePlanTerms) error {
	switch {
	case from.ID == to.ID:
		return credit.Errorf(credit.CodeSamePlan, "the subscription is on plan %q already", from.Name)
	case from.Currency != to.Currency:
		return credit.Errorf(credit.CodeCurrencyMismatch, "plan %q bills in %s and plan %q in %s: there is no conversion between them; cancel and subscribe instead",
			from.Name, from.Currency, to.Name, to.Currency)
	case from.Period != to.Period:
		return credit.Errorf(credit.CodeCurrencyMismatch, "plan %q bills per %s and plan %q per %s: cancel at the period end and subscribe instead",
			from.Name, from.Period, to.Name, to.Period)
	}
	return nil
}

// ChangeKind is UPGRADE, DOWNGRADE or CHANGE by the included credits, then
// the fee.
func ChangeKind(from, to ChangePlanTerms) string {
	c := to.IncludedCredits.Cmp(from.IncludedCredits)
	if c == 0 {
		c = to.PlatformFee.Cmp(from.PlatformFee)
	}
	switch {
	case c > 0:
		return "UPGRADE"
	case c < 0:
		return "DOWNGRADE"
	}
	return "CHANGE"
}

// ChangePlanNow decides an immediate plan change.
func ChangePlanNow(req PlanChangeRequest) (PlanChange, error) {
	if err := ValidatePlanChange(req.From, req.To); err != nil {
		return PlanChange{}, err
	}
	if !req.Now.Before(req.PeriodEnd) || req.Now.Before(req.PeriodStart) {
		return PlanChange{}, fmt.Errorf("plan change at %s outside the period [%s, %s)", req.Now, req.PeriodStart, req.PeriodEnd)
	}
	f := PeriodLeft(req.PeriodStart, req.PeriodEnd, req.Now)
	out := PlanChange{Posting: Posting{Org: req.Org}, Kind: ChangeKind(req.From, req.To), Fraction: f, Credits: decimal.Zero, Fee: decimal.Zero}
	memo := fmt.Sprintf("plan change %s -> %s", req.From.Name, req.To.Name)
	diff := req.To.IncludedCredits.Sub(req.From.IncludedCredits)
	share := decimal.NewFromInt(1) // of the money back a downgrade earns: the credits it could take back
	switch req.From.ChangeCredits {
	case credit.ChangeForfeit:
		out.Credits = takeBack(&out.Posting, req, unused(req.Included), memo+": unused included credits forfeited")
		out.Credits = out.Credits.Add(grantIncluded(&out.Posting, req, req.To.IncludedCredits.Mul(f).Round(changePlaces), memo))
	default:
		if diff.IsPositive() {
			out.Credits = grantIncluded(&out.Posting, req, diff.Mul(f).Round(changePlaces), memo+": prorated")
		} else if diff.IsNegative() && req.From.ChangeCredits != credit.ChangeCarry {
			want := diff.Neg().Mul(f).Round(changePlaces)
			out.Credits = takeBack(&out.Posting, req, want, memo+": prorated")
			if want.IsPositive() {
				share = out.Credits.Neg().Div(want)
			}
		}
	}
	fee := req.To.PlatformFee.Sub(req.From.PlatformFee).Mul(f)
	if fee.IsNegative() {
		fee = fee.Mul(share) // credits burned are not paid back: upgrade, burn, downgrade buys nothing free
	}
	if fee = fee.Round(changePlaces); !fee.IsZero() {
		sub, at := req.SubscriptionID, req.PeriodStart
		out.Fee = fee
		out.Charges = []Charge{{Kind: "PRORATION", Credits: out.Credits, Amount: fee, Currency: req.To.Currency, SubscriptionID: &sub,
			PeriodStart: &at, Memo: fmt.Sprintf("%s: fee difference %s x %s of the period", memo, req.To.PlatformFee.Sub(req.From.PlatformFee), f)}}
	}
	return out, nil
}

func unused(gs []Grant) decimal.Decimal {
	sum := decimal.Zero
	for _, g := range gs {
		sum = sum.Add(g.Remaining)
	}
	return sum
}

// grantIncluded opens a SUBSCRIPTION grant of credits ending with the
// period, at the new plan's price per credit; it returns the credits.
func grantIncluded(p *Posting, req PlanChangeRequest, credits decimal.Decimal, memo string) decimal.Decimal {
	if !credits.IsPositive() {
		return decimal.Zero
	}
	end := req.PeriodEnd
	p.Open = append(p.Open, Opening{Pool: req.Pool, CreditType: credit.CreditSubscription, Amount: credits, UnitPrice: req.To.PricePerCredit,
		EffectiveAt: req.Now, ExpiresAt: &end, Kind: credit.EntryGrant, Memo: memo})
	return credits
}

// takeBack takes up to want credits from the unused included credits,
// newest grant first, with ADJUSTMENT entries; it returns minus what it
// took.
func takeBack(p *Posting, req PlanChangeRequest, want decimal.Decimal, memo string) decimal.Decimal {
	gs := append([]Grant(nil), req.Included...)
	sort.Slice(gs, func(i, j int) bool { return gs[i].ID > gs[j].ID })
	taken := decimal.Zero
	for _, g := range gs {
		left := want.Sub(taken)
		if !left.IsPositive() {
			break
		}
		if x := decimal.Min(left, g.Remaining); x.IsPositive() {
			p.Moves = append(p.Moves, Move{Pool: req.Pool, Grant: g.ID, Kind: credit.EntryAdjustment, Amount: x.Neg(), Memo: memo})
			taken = taken.Add(x)
		}
	}
	return taken.Neg()
}
