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

// RefundRequest is a refund of (part of) what a usage event charged.
type RefundRequest struct {
	Org, Pool, Event int             // the event's organisation and pool
	Sources          []RefundSource  // the event's draws, in the order they were drawn
	Overage          decimal.Decimal // overage credits the event charged, not refunded yet
	OveragePrice     decimal.Decimal // money per overage credit (its OVERAGE charge's)
	Currency         string
	SubscriptionID   *int
	Amount           *decimal.Decimal // nil: everything still refundable
	AsService        bool             // as a new SERVICE grant in the event's pool, not back to the grants
	Memo             string
	Rule             *Rule     // the REFUND policy in effect; nil: the default (DefaultRefundRoles, anything refundable)
	Ask              RefundAsk // who asks, and why
}

// RefundAsk is who asks for a refund and why, as a REFUND policy sees it.
type RefundAsk struct {
	Role     credit.Role
	Reason   string
	Event    Event
	Org      Org
	AgeHours decimal.Decimal // since the event (or the grant) was recorded
	Charged  decimal.Decimal // the money its subject charged: an event's overage charge, a grant's purchase
}

// DefaultRefundRoles may refund usage when no REFUND policy is in effect.
var DefaultRefundRoles = []credit.Role{credit.RoleOperator}

// RefundSource is one grant the event drew from.
type RefundSource struct {
	Grant    Grant
	Pool     int
	Drawn    decimal.Decimal // what the event took from it
	Refunded decimal.Decimal // what earlier refunds gave back to it
}

// Refundable is what a refund may still give back: the overage not yet
// refunded and what the draws took less what was given back. Uncovered and
// borrowed credits were never paid for out of the balance, so they are not
// refundable.
func (r RefundRequest) Refundable() decimal.Decimal {
	sum := r.Overage
	for _, s := range r.Sources {
		sum = sum.Add(s.Drawn.Sub(s.Refunded))
	}
	return sum
}

// GivenAsGrants counts earlier refunds that gave credits as new grants
// (successors of expired grants, SERVICE credits) against what they
// refunded, in the order Refund refunds: the overage first, then the draws,
// last drawn first.
func (r *RefundRequest) GivenAsGrants(given decimal.Decimal) {
	take := decimal.Min(given, r.Overage)
	r.Overage, given = r.Overage.Sub(take), given.Sub(take)
	for i := len(r.Sources) - 1; i >= 0 && given.IsPositive(); i-- {
		take := decimal.Min(given, r.Sources[i].Drawn.Sub(r.Sources[i].Refunded))
		r.Sources[i].Refunded, given = r.Sources[i].Refunded.Add(take), given.Sub(take)
	}
}

// Refund decides a refund of a usage event. The last credits charged come
// back first: the overage (its OVERAGE charge is reversed by a negative
// charge), then the draws in reverse order. Each draw's credits go back to
// their grant (a REFUND entry) while it is usable; a grant that has expired
// since gets a successor: a new grant of the same credit type and unit
// price, effective now and lasting as long as the original did. As SERVICE
// credits, the whole refund is one new SERVICE grant in the event's pool and
// no money moves. An event with nothing left to refund is NOT_REFUNDABLE;
// more than is left, REFUND_EXCEEDED.
//
// The REFUND policy in effect says how much of it may come back (its
// result, at most what is left); 0 is REFUND_FORBIDDEN, less than asked
// REFUND_EXCEEDED. Without a policy, DefaultRefundRoles may refund all that
// is left and other roles nothing.
func Refund(ctx context.Context, req RefundRequest, now time.Time) (Posting, error) {
	left := req.Refundable()
	if !left.IsPositive() {
		return Posting{}, credit.Errorf(credit.CodeNotRefundable, "usage event %d has nothing left to refund", req.Event)
	}
	amount := left
	if req.Amount != nil {
		amount = *req.Amount
	}
	allowed, err := refundAllowed(ctx, &req, amount, left, now)
	if err != nil {
		return Posting{}, err
	}
	switch {
	case !amount.IsPositive():
		return Posting{}, credit.Invalid("amount", "must be greater than zero, got %s", amount)
	case amount.GreaterThan(left):
		return Posting{}, credit.Errorf(credit.CodeRefundExceeded, "usage event %d has %s credits left to refund, %s asked for", req.Event, left, amount)
	case !allowed.IsPositive():
		return Posting{}, credit.Errorf(credit.CodeRefundForbidden, "the refund policy allows no refund of usage event %d to a %s key", req.Event, req.Ask.Role)
	case amount.GreaterThan(allowed):
		return Posting{}, credit.Errorf(credit.CodeRefundExceeded, "the refund policy allows %s credits of usage event %d back, %s asked for", allowed, req.Event, amount)
	}
	ev := req.Event
	out := Posting{Org: req.Org}
	if req.AsService {
		out.Open = append(out.Open, Opening{Pool: req.Pool, CreditType: credit.CreditService, Amount: amount, UnitPrice: decimal.Zero,
			EffectiveAt: now, Kind: credit.EntryGrant, UsageEvent: &ev, Memo: req.Memo})
		return out, nil
	}
	if take := decimal.Min(amount, req.Overage); take.IsPositive() {
		amount = amount.Sub(take)
		out.Moves = append(out.Moves, Move{Pool: req.Pool, Kind: credit.EntryRefund, Amount: take, UsageEvent: &ev, Memo: req.Memo})
		out.Charges = append(out.Charges, Charge{Kind: "OVERAGE", Credits: take.Neg(), Amount: take.Mul(req.OveragePrice).Neg(),
			Currency: req.Currency, SubscriptionID: req.SubscriptionID, UsageEvent: &ev, Memo: fmt.Sprintf("refund of usage event %d", ev)})
	}
	for i := len(req.Sources) - 1; i >= 0 && amount.IsPositive(); i-- {
		s := req.Sources[i]
		take := decimal.Min(amount, s.Drawn.Sub(s.Refunded))
		if !take.IsPositive() {
			continue
		}
		amount = amount.Sub(take)
		if s.Grant.ExpiresAt == nil || s.Grant.ExpiresAt.After(now) {
			out.Moves = append(out.Moves, Move{Pool: s.Pool, Grant: s.Grant.ID, Kind: credit.EntryRefund, Amount: take, UsageEvent: &ev, Memo: req.Memo})
			continue
		}
		exp := now.Add(s.Grant.ExpiresAt.Sub(s.Grant.EffectiveAt))
		priority := s.Grant.Priority
		out.Open = append(out.Open, Opening{Pool: s.Pool, CreditType: s.Grant.CreditType, Amount: take, UnitPrice: s.Grant.UnitPrice,
			Priority: &priority, EffectiveAt: now, ExpiresAt: &exp, Kind: credit.EntryGrant, UsageEvent: &ev, Memo: req.Memo})
	}
	return out, nil
}

// refundAllowed is the most the refund of an event may give back. A
// policy may answer SERVICE for a refund asked as credits (and the other
// way round); MONEY is for purchased credits only.
func refundAllowed(ctx context.Context, req *RefundRequest, amount, left decimal.Decimal, now time.Time) (decimal.Decimal, error) {
	if req.Rule == nil {
		if slices.Contains(DefaultRefundRoles, req.Ask.Role) {
			return left, nil
		}
		return decimal.Zero, nil
	}
	a := req.Ask
	ans, err := askRefundRule(ctx, req.Rule, rules.Vars{Subject: "EVENT", Event: ruleEvent(a.Event), Org: ruleOrg(a.Org), Grant: &rules.Grant{},
		Amount: amount, Refundable: left, Charged: a.Charged, AgeHours: a.AgeHours, Role: string(a.Role), Reason: a.Reason, AsService: req.AsService, Now: now})
	if err != nil {
		return decimal.Zero, err
	}
	switch ans.Form {
	case rules.FormMoney:
		return decimal.Zero, credit.Errorf(credit.CodeRuleRuntime, "REFUND policy %q version %d answers MONEY for usage event %d: usage refunds as CREDITS or SERVICE", req.Rule.Name, req.Rule.Version, req.Event)
	case rules.FormService, rules.FormCredits:
		req.AsService = ans.Form == rules.FormService
	}
	return decimal.Min(ans.Amount, left), nil
}

// askRefundRule evaluates a REFUND policy.
func askRefundRule(ctx context.Context, r *Rule, v rules.Vars) (rules.RefundAnswer, error) {
	ans, err := r.Program.Refund(ctx, v)
	if err != nil {
		return ans, ruleRuntime("REFUND policy "+quote(r.Name)+" version "+itoa(r.Version), err)
	}
	return ans, nil
}

// Void decides voiding a grant made by mistake: its unused credits leave
// with a VOID entry; what was already burned stays burned, and credits an
// open run holds stay held (they come back to the grant when the run
// settles, and can be voided then). A grant with nothing left is CONFLICT.
func Void(org, pool int, g Grant, memo string) (Posting, error) {
	if !g.Paid() {
		return Posting{}, g.waiting(credit.CodeConflict)
	}
	if !g.Remaining.IsPositive() {
		return Posting{}, credit.Errorf(credit.CodeConflict, "grant %d has nothing left to void", g.ID)
	}
	return Posting{Org: org, Moves: []Move{{Pool: pool, Grant: g.ID, Kind: credit.EntryVoid, Amount: g.Remaining.Neg(), Memo: memo}}}, nil
}
