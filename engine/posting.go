package engine

import (
	"fmt"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/shopspring/decimal"
)

// A Posting is what a decision writes to the ledger, apart from the usage
// events of a batch: the grants it opens (each with its opening entry), the
// moves on grants that exist (each an entry that changes its grant's
// remaining by its amount), the money it charges and the payment status
// changes of grants waiting for payment. The engine decides
// postings; ledger's poster writes them and is the only code that creates
// grants or changes what they hold (the usage batch's bulk writer is its
// usage-event form).
type Posting struct {
	Org      int
	Open     []Opening
	Moves    []Move
	Charges  []Charge
	Payments []PaymentChange // grants whose payment was confirmed or failed (see ConfirmPayment)
}

// Opening is a grant to create with its opening entry of +Amount.
type Opening struct {
	Pool        int
	CreditType  credit.CreditType
	Amount      decimal.Decimal
	UnitPrice   decimal.Decimal
	Priority    *int // nil: the default
	EffectiveAt time.Time
	ExpiresAt   *time.Time
	Kind        credit.EntryKind // GRANT, ROLLOVER_IN (rolled into a new period) or TRANSFER_IN (moved from another pool)
	UsageEvent  *int             // the event it gives back credits of (a refund), if any
	Memo        string
	// PaymentDue, when set, opens the grant PENDING: holding nothing, with
	// no opening entry, until its payment is confirmed; failed at this
	// time if it is not (see ConfirmPayment).
	PaymentDue *time.Time
}

// Move is an entry on an existing grant, or on none (Grant 0: the refund
// of overage credits, which no grant held).
type Move struct {
	Pool, Grant int
	Kind        credit.EntryKind
	Amount      decimal.Decimal // signed: what the grant's remaining changes by
	UsageEvent  *int            // the event that caused it, if any
	Memo        string
}

// Charge is money a posting bills.
type Charge struct {
	Kind           string // PLATFORM_FEE, OVERAGE, ON_DEMAND, AUTO_TOP_UP
	Credits        decimal.Decimal
	Amount         decimal.Decimal
	Currency       string
	SubscriptionID *int
	PeriodStart    *time.Time
	UsageEvent     *int // the usage event it bills or reverses
	Opening        *int // index in Open of the grant it paid for
	Grant          *int // an existing grant it pays for or refunds
	RefundOf       *int // the charge a negative charge gives money back of
	AddOn          *int // the subscription add-on it bills or gives back
	Memo           string
}

// PeriodTerms is what opening a subscription period needs of its plan.
type PeriodTerms struct {
	Plan            string
	Pool            int
	RolloverMode    credit.RolloverMode
	RolloverCap     decimal.NullDecimal
	IncludedCredits decimal.Decimal
	PricePerCredit  decimal.Decimal
	PlatformFee     decimal.Decimal
	Currency        string
	SubscriptionID  int
	// TermEnd: the boundary ends a term (a renewal starts, or the
	// subscription ends there). TermEndCredits then says what the unused
	// SUBSCRIPTION and ROLLOVER credits ending there do (REFUND: at
	// RefundRate money per credit); a Commitment above what the term
	// billed (TermSpent) is trued up by a TRUE_UP charge for the
	// difference, dated TermStart.
	TermEnd        bool
	TermEndCredits credit.TermEndCredits
	RefundRate     decimal.Decimal
	Commitment     decimal.Decimal
	TermSpent      decimal.Decimal
	TermStart      time.Time
	// AddOns are the add-ons attached at the period's start: each grants
	// its credits and bills its fee for the new period.
	AddOns []AddOnTerms
}

// PeriodOpening is the decision of opening period n (start to end) of a
// subscription: the close of the period before, what rolls over, the new
// allocation and the platform fee, as one posting, with its totals.
type PeriodOpening struct {
	Posting
	Close     PeriodClose
	Allocated decimal.Decimal
	Refunded  decimal.Decimal // unused credits refunded in money at the term end (not in Close.Expired)
	TrueUp    decimal.Decimal // the commitment's shortfall billed at the term end
}

// OpenPeriod decides opening period n, from start to end, for the grants of
// the subscription's pool ending at start. running: the term has not ended
// (a period past the term's end only closes: nothing rolls past it, nothing
// is allocated or billed). borrowed: what the period before borrowed on this
// allocation (BORROW plans), taken off it.
func OpenPeriod(t PeriodTerms, org, n int, start, end time.Time, ending []Grant, running bool, borrowed decimal.Decimal) PeriodOpening {
	mode := t.RolloverMode
	if !running || t.TermEnd && t.TermEndCredits != credit.TermEndRoll && t.TermEndCredits != "" {
		mode = credit.RolloverNone
	}
	pc := ClosePeriod(mode, t.RolloverCap, ending, start)
	out := PeriodOpening{Posting: Posting{Org: org}, Close: pc, Allocated: decimal.Zero, Refunded: decimal.Zero, TrueUp: decimal.Zero}
	memo := fmt.Sprintf("period %d close", n)
	types := map[int]credit.CreditType{}
	for _, g := range ending {
		types[g.ID] = g.CreditType
	}
	refund := t.TermEnd && t.TermEndCredits == credit.TermEndRefund
	for _, x := range pc.Expire {
		if typ := types[x.GrantID]; refund && (typ == credit.CreditSubscription || typ == credit.CreditRollover) {
			out.Moves = append(out.Moves, Move{Pool: t.Pool, Grant: x.GrantID, Kind: credit.EntryRefund, Amount: x.Amount.Neg(), Memo: "term end: unused credits refunded"})
			out.Refunded = out.Refunded.Add(x.Amount)
			continue
		}
		out.Moves = append(out.Moves, Move{Pool: t.Pool, Grant: x.GrantID, Kind: credit.EntryExpire, Amount: x.Amount.Neg(), Memo: memo})
	}
	out.Close.Expired = pc.Expired.Sub(out.Refunded)
	sub := t.SubscriptionID
	if out.Refunded.IsPositive() {
		at := start
		out.Charges = append(out.Charges, Charge{Kind: "TERM_REFUND", Credits: out.Refunded.Neg(), Amount: out.Refunded.Mul(t.RefundRate).Round(changePlaces).Neg(),
			Currency: t.Currency, SubscriptionID: &sub, PeriodStart: &at, Memo: fmt.Sprintf("term end: %s unused credits at %s", out.Refunded, t.RefundRate)})
	}
	if short := t.Commitment.Sub(t.TermSpent); t.TermEnd && short.IsPositive() {
		at := t.TermStart
		out.TrueUp = short
		out.Charges = append(out.Charges, Charge{Kind: "TRUE_UP", Credits: decimal.Zero, Amount: short, Currency: t.Currency, SubscriptionID: &sub,
			PeriodStart: &at, Memo: fmt.Sprintf("term end: committed %s, billed %s", t.Commitment, t.TermSpent)})
	}
	for _, x := range pc.RollOut {
		out.Moves = append(out.Moves, Move{Pool: t.Pool, Grant: x.GrantID, Kind: credit.EntryRolloverOut, Amount: x.Amount.Neg(), Memo: memo})
	}
	open := func(typ credit.CreditType, kind credit.EntryKind, amount decimal.Decimal, memo string) {
		exp := end
		out.Open = append(out.Open, Opening{Pool: t.Pool, CreditType: typ, Amount: amount, UnitPrice: t.PricePerCredit,
			EffectiveAt: start, ExpiresAt: &exp, Kind: kind, Memo: memo})
	}
	if pc.Rolled.IsPositive() {
		open(credit.CreditRollover, credit.EntryRolloverIn, pc.Rolled, fmt.Sprintf("rolled into period %d", n))
	}
	if !running {
		return out
	}
	if included := decimal.Max(t.IncludedCredits.Sub(borrowed), decimal.Zero); included.IsPositive() {
		open(credit.CreditSubscription, credit.EntryGrant, included, fmt.Sprintf("%s period %d", t.Plan, n))
		out.Allocated = included
	}
	if t.PlatformFee.IsPositive() {
		at := start
		out.Charges = append(out.Charges, Charge{Kind: "PLATFORM_FEE", Credits: decimal.Zero, Amount: t.PlatformFee, Currency: t.Currency,
			SubscriptionID: &sub, PeriodStart: &at, Memo: fmt.Sprintf("%s period %d", t.Plan, n)})
	}
	for _, a := range t.AddOns {
		attachAddOn(&out.Posting, a, t.Pool, sub, start, end, start, decimal.NewFromInt(1))
	}
	return out
}
