package engine

import (
	"context"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// TransferRequest is a move of credits from one pool to another, as the
// engine decides it. Transfers are non-monetary: nothing is bought, sold or
// charged, and pools of two organisations only meet when the vendor's
// operator moves credits between them (the caller checks that).
type TransferRequest struct {
	FromOrg, ToOrg   int // the pools' organisations (two only when the operator moves credits)
	From, To         int
	FromKind, ToKind credit.PoolKind
	Amount           decimal.Decimal
	Role             credit.Role
	MovedToday       decimal.Decimal // what the source pool moved out since the start of the UTC day
	Memo             string
}

// DefaultTransferRoles may transfer when no TRANSFER policy is in effect.
var DefaultTransferRoles = []credit.Role{credit.RoleOperator, credit.RoleOrgAdmin}

// Transfer decides a transfer. The source pool's usable grants give up to
// Amount in the pool's draw order, each only when the TRANSFER rule lets its
// credits move (without a rule: every grant, for the default roles). Moved
// credits leave their grant with a TRANSFER_OUT entry and arrive in the
// target pool as a new grant of the same credit type, unit price,
// priority and expiry, whose opening entry is TRANSFER_IN: they stay what
// they were, and expire when they would have.
//
// Fewer transferable credits than Amount is INSUFFICIENT_CREDITS; a role
// the default does not allow, or a rule that lets no grant move, is
// TRANSFER_FORBIDDEN. Nothing is moved then.
// The result is two postings: what leaves the source (its organisation's
// entries) and what arrives in the target (its organisation's grants).
func Transfer(ctx context.Context, rule, drawOrder *Rule, req TransferRequest, grants []Grant, now time.Time) (out, in Posting, err error) {
	if rule == nil && !slices.Contains(DefaultTransferRoles, req.Role) {
		return Posting{}, Posting{}, credit.Errorf(credit.CodeTransferForbidden, "a %s key may not transfer credits", req.Role)
	}
	ordered, err := OrderGrants(ctx, drawOrder, grants, now)
	if err != nil {
		return Posting{}, Posting{}, err
	}
	left := req.Amount
	out, in = Posting{Org: req.FromOrg}, Posting{Org: req.ToOrg}
	refused := 0
	for _, g := range ordered {
		if !left.IsPositive() {
			break
		}
		if ok, err := transferable(ctx, rule, req, g, now); err != nil {
			return Posting{}, Posting{}, err
		} else if !ok {
			refused++
			continue
		}
		take := decimal.Min(left, g.Remaining)
		left = left.Sub(take)
		out.Moves = append(out.Moves, Move{Pool: req.From, Grant: g.ID, Kind: credit.EntryTransferOut, Amount: take.Neg(), Memo: req.Memo})
		priority := g.Priority
		in.Open = append(in.Open, Opening{Pool: req.To, CreditType: g.CreditType, Amount: take, UnitPrice: g.UnitPrice,
			Priority: &priority, EffectiveAt: g.EffectiveAt, ExpiresAt: g.ExpiresAt, Kind: credit.EntryTransferIn, Memo: req.Memo})
	}
	switch {
	case !left.IsPositive():
		return out, in, nil
	case len(out.Moves) == 0 && refused > 0:
		return Posting{}, Posting{}, credit.Errorf(credit.CodeTransferForbidden, "the TRANSFER policy %q version %d lets none of the pool's credits move", rule.Name, rule.Version)
	}
	return Posting{}, Posting{}, credit.Errorf(credit.CodeInsufficientCredits, "pool %d has %s transferable credits, %s asked for",
		req.From, req.Amount.Sub(left), req.Amount)
}

func transferable(ctx context.Context, rule *Rule, req TransferRequest, g Grant, now time.Time) (bool, error) {
	if rule == nil {
		return true, nil
	}
	ok, err := rule.Program.Bool(ctx, rules.Vars{Grant: ruleGrant(g), Amount: req.Amount, MovedToday: req.MovedToday,
		Role: string(req.Role), FromKind: string(req.FromKind), ToKind: string(req.ToKind), Now: now})
	if err != nil {
		return false, ruleRuntime("TRANSFER policy "+quote(rule.Name)+" version "+itoa(rule.Version), err)
	}
	return ok, nil
}
