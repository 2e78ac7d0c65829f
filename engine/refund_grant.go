package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// GrantRefundRequest is a refund of (part of) the unused credits of a
// purchased grant.
type GrantRefundRequest struct {
	Org, Pool int
	Grant     Grant            // read under its pool's lock: Remaining is what is unused and not held
	Paid      *PaidCharge      // the charge that paid for it; nil: nothing did (granted or included credits)
	Amount    *decimal.Decimal // nil: everything unused
	AsService bool             // asked as SERVICE credits instead of money
	Memo      string
	Rule      *Rule // the REFUND policy in effect; nil: the default (no money; OPERATOR may convert to SERVICE)
	Ask       RefundAsk
}

// PaidCharge is the charge that paid for a grant, and the money refunds
// have given back of it so far.
type PaidCharge struct {
	ID             int
	Kind           string // ON_DEMAND, AUTO_TOP_UP, ADD_ON
	Amount         decimal.Decimal
	Refunded       decimal.Decimal // positive: what earlier refunds gave back
	Currency       string
	SubscriptionID *int
	AddOn          *int // the subscription add-on an ADD_ON charge bills
}

// refundableTypes are the credit types a buyer paid for by the credit.
var refundableTypes = []credit.CreditType{credit.CreditOnDemand, credit.CreditSubscription}

// RefundGrant decides a refund of a grant's unused credits: they leave the
// grant with a REFUND entry of -amount and come back as money (a negative
// charge of the paying charge's kind, referencing it: amount x the grant's
// unit price x the policy's factor, never more than is left of the charge)
// or as one SERVICE grant of the same credits in the grant's pool, without
// expiry. The REFUND policy decides how much, in which form and at what
// factor; without one, money is never refunded and an OPERATOR may convert
// unused credits to SERVICE credits.
//
// Only ON_DEMAND and SUBSCRIPTION credits refund; money needs a charge
// that paid for the grant, so SUBSCRIPTION credits (paid for by the
// subscription, not by the credit) refund as SERVICE credits only.
func RefundGrant(ctx context.Context, req GrantRefundRequest, now time.Time) (Posting, error) {
	g := req.Grant
	left := g.Remaining
	switch {
	case !g.Paid():
		return Posting{}, g.waiting(credit.CodeNotRefundable)
	case !slices.Contains(refundableTypes, g.CreditType):
		return Posting{}, credit.Errorf(credit.CodeNotRefundable, "grant %d holds %s credits: only ON_DEMAND and SUBSCRIPTION credits refund", g.ID, g.CreditType)
	case g.ExpiresAt != nil && !g.ExpiresAt.After(now):
		return Posting{}, credit.Errorf(credit.CodeNotRefundable, "grant %d expired at %s", g.ID, g.ExpiresAt.UTC().Format(time.RFC3339))
	case !left.IsPositive():
		return Posting{}, credit.Errorf(credit.CodeNotRefundable, "grant %d has no unused credits (credits a run holds refund after it settles)", g.ID)
	}
	amount := left
	if req.Amount != nil {
		amount = *req.Amount
	}
	if !amount.IsPositive() {
		return Posting{}, credit.Invalid("amount", "must be greater than zero, got %s", amount)
	}
	if amount.GreaterThan(left) {
		return Posting{}, credit.Errorf(credit.CodeRefundExceeded, "grant %d has %s unused credits, %s asked for", g.ID, left, amount)
	}
	ans, err := grantRefundAnswer(ctx, req, amount, left, now)
	if err != nil {
		return Posting{}, err
	}
	switch {
	case ans.Form == rules.FormCredits:
		return Posting{}, credit.Errorf(credit.CodeRefundForbidden, "the refund policy keeps grant %d's credits as credits", g.ID)
	case !ans.Amount.IsPositive():
		return Posting{}, credit.Errorf(credit.CodeRefundForbidden, "the refund policy allows no %s refund of grant %d to a %s key", formWord(ans.Form), g.ID, req.Ask.Role)
	case amount.GreaterThan(ans.Amount):
		return Posting{}, credit.Errorf(credit.CodeRefundExceeded, "the refund policy allows %s credits of grant %d back, %s asked for", ans.Amount, g.ID, amount)
	}
	out := Posting{Org: req.Org, Moves: []Move{{Pool: req.Pool, Grant: g.ID, Kind: credit.EntryRefund, Amount: amount.Neg(), Memo: req.Memo}}}
	if ans.Form == rules.FormService {
		out.Open = []Opening{{Pool: req.Pool, CreditType: credit.CreditService, Amount: amount, UnitPrice: decimal.Zero,
			EffectiveAt: now, Kind: credit.EntryGrant, Memo: req.Memo}}
		return out, nil
	}
	ch, err := moneyBack(req, amount, ans.Factor)
	if err != nil {
		return Posting{}, err
	}
	out.Charges = []Charge{ch}
	return out, nil
}

// grantRefundAnswer is the policy's answer, or the default's, with the
// form settled: what the policy answered, else what was asked.
func grantRefundAnswer(ctx context.Context, req GrantRefundRequest, amount, left decimal.Decimal, now time.Time) (rules.RefundAnswer, error) {
	asked := rules.FormMoney
	if req.AsService {
		asked = rules.FormService
	}
	if req.Rule == nil {
		ans := rules.RefundAnswer{Amount: decimal.Zero, Form: asked, Factor: decimal.NewFromInt(1)}
		if asked == rules.FormService && slices.Contains(DefaultRefundRoles, req.Ask.Role) {
			ans.Amount = left
		}
		return ans, nil
	}
	g, a := req.Grant, req.Ask
	ans, err := askRefundRule(ctx, req.Rule, rules.Vars{Subject: "GRANT", Grant: ruleGrant(g), Event: &rules.Event{}, Org: ruleOrg(a.Org),
		Amount: amount, Refundable: left, Charged: a.Charged, AgeHours: a.AgeHours, Role: string(a.Role), Reason: a.Reason, AsService: req.AsService, Now: now})
	if err != nil {
		return ans, err
	}
	if ans.Form == "" {
		ans.Form = asked
	}
	ans.Amount = decimal.Min(ans.Amount, left)
	return ans, nil
}

// moneyBack is the negative charge of a money refund: amount at the
// grant's unit price times factor, at most what is left of the charge.
func moneyBack(req GrantRefundRequest, amount, factor decimal.Decimal) (Charge, error) {
	g, paid := req.Grant, req.Paid
	if paid == nil {
		return Charge{}, credit.Errorf(credit.CodeNotRefundable, "no charge paid for grant %d (%s credits): it refunds as SERVICE credits only", g.ID, g.CreditType)
	}
	rest := paid.Amount.Sub(paid.Refunded)
	if !rest.IsPositive() {
		return Charge{}, credit.Errorf(credit.CodeRefundExceeded, "charge %d that paid for grant %d has been refunded in full", paid.ID, g.ID)
	}
	money := decimal.Min(amount.Mul(g.UnitPrice).Mul(factor), rest)
	grantID, of := g.ID, paid.ID
	return Charge{Kind: paid.Kind, Credits: amount.Neg(), Amount: money.Neg(), Currency: paid.Currency, SubscriptionID: paid.SubscriptionID,
		Grant: &grantID, RefundOf: &of, AddOn: paid.AddOn, Memo: fmt.Sprintf("refund of %s credits of grant %d at %s x %s", amount, g.ID, g.UnitPrice, factor)}, nil
}

func formWord(form string) string {
	if form == rules.FormService {
		return "SERVICE-credit"
	}
	return "money"
}
