package ledger

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/ledgerentry"
)

// TransferInput moves credits from one pool to another.
type TransferInput struct {
	FromPoolID, ToPoolID int
	Amount               decimal.Decimal
	Memo                 string
	IdempotencyKey       string // when set, a retry returns the first transfer's entries and moves nothing
}

// Validate checks what can be checked without the database.
func (in TransferInput) Validate() error {
	switch {
	case in.FromPoolID == in.ToPoolID:
		return credit.Invalid("toPoolId", "is the pool the credits come from")
	case !in.Amount.IsPositive():
		return credit.Invalid("amount", "must be greater than zero, got %s", in.Amount)
	case len(in.Memo) > 500:
		return credit.Invalid("memo", "must be at most 500 characters")
	case !utf8.ValidString(in.Memo):
		return credit.Invalid("memo", "is not valid UTF-8")
	}
	if err := checkKey(in.IdempotencyKey); err != nil {
		return err
	}
	return engine.CheckText("memo", in.Memo)
}

// TransferCredits moves credits between two pools in one transaction: load
// (both pools locked in id order, the source's grants, what it moved out
// today, the TRANSFER and DRAW_ORDER policies in effect), decide
// (engine.Transfer), post (TRANSFER_OUT entries on the source's grants, new
// grants with TRANSFER_IN entries in the target), audit. It returns the
// entries it wrote. Pools of two organisations: only an OPERATOR key may
// move credits between them (TRANSFER_FORBIDDEN otherwise, the same answer
// whether or not the other pool exists, so ids cannot be probed).
func (s *Service) TransferCredits(ctx context.Context, in TransferInput) ([]*ent.LedgerEntry, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	caller := auth.From(ctx)
	role := credit.RoleOperator // internal callers (no key) act as the operator
	if caller != nil {
		role = caller.Role
	}
	snap, err := s.catalog.current(ctx)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	var out []*ent.LedgerEntry
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		if err := s.lockIDs(ctx, tx, "pools", sortedKeys(setOf([]int{in.FromPoolID, in.ToPoolID}))); err != nil {
			return err
		}
		snap, err := s.catalog.fresh(ctx, tx.Client(), snap)
		if err != nil {
			return err
		}
		v, err := snap.versions("", nil, now)
		if err != nil {
			return err
		}
		from, to, err := transferPools(ctx, tx, caller, role, in)
		if err != nil {
			return err
		}
		ids, replay, err := s.keyed(ctx, tx, from.OrganizationID, in.IdempotencyKey, "transferCredits", in, func() ([]int, error) {
			var err error
			out, err = s.transfer(ctx, tx, v, from, to, in, role, now)
			ids := make([]int, len(out))
			for i, e := range out {
				ids[i] = e.ID
			}
			return ids, err
		})
		if err == nil && replay {
			out, err = tx.LedgerEntry.Query().Where(ledgerentry.IDIn(ids...)).Order(ent.Asc(ledgerentry.FieldID)).All(ctx)
		}
		return err
	})
	return out, err
}

// transferPools loads the two pools of a transfer, or says why the caller
// may not move credits between them.
func transferPools(ctx context.Context, tx *ent.Tx, caller *auth.Principal, role credit.Role, in TransferInput) (from, to *ent.Pool, err error) {
	from, err = tx.Pool.Get(ctx, in.FromPoolID)
	if err != nil || !caller.Sees(from.OrganizationID) {
		return nil, nil, credit.NotFound("pool", in.FromPoolID)
	}
	to, err = tx.Pool.Get(ctx, in.ToPoolID)
	switch {
	case (err != nil || !caller.Sees(to.OrganizationID)) && caller.Scoped():
		return nil, nil, &credit.Error{Code: credit.CodeTransferForbidden, Field: "toPoolId", Message: "credits move only between pools of your organisation"}
	case err != nil:
		return nil, nil, credit.NotFound("pool", in.ToPoolID)
	case to.OrganizationID != from.OrganizationID && role != credit.RoleOperator:
		return nil, nil, &credit.Error{Code: credit.CodeTransferForbidden, Field: "toPoolId", Message: "only the operator moves credits between organisations"}
	}
	return from, to, nil
}

// transfer loads, decides and posts one transfer, in tx, under the pools'
// locks, and returns the entries it wrote.
func (s *Service) transfer(ctx context.Context, tx *ent.Tx, v engine.Versions, from, to *ent.Pool, in TransferInput, role credit.Role, now time.Time) ([]*ent.LedgerEntry, error) {
	req := engine.TransferRequest{FromOrg: from.OrganizationID, ToOrg: to.OrganizationID, From: from.ID, To: to.ID,
		FromKind: from.Kind, ToKind: to.Kind, Amount: in.Amount, Role: role, Memo: in.Memo}
	var err error
	if req.MovedToday, err = s.movedSince(ctx, tx, from.ID, engine.BudgetPeriodStart(credit.PeriodDay, now)); err != nil {
		return nil, err
	}
	gs, err := tx.Grant.Query().Where(grant.PoolID(from.ID), grant.RemainingNEQ(decimal.Zero)).All(ctx)
	if err != nil {
		return nil, err
	}
	grants := make([]engine.Grant, len(gs))
	for i, g := range gs {
		grants[i] = engineGrant(g)
	}
	leaving, arriving, err := engine.Transfer(ctx, v.Transfer, v.DrawOrder, req, grants, now)
	if err != nil {
		return nil, err
	}
	_, out, err := s.postEntries(ctx, tx, []engine.Posting{leaving, arriving}, now,
		ledgerentry.KindIn(credit.EntryTransferOut, credit.EntryTransferIn))
	if err != nil {
		return nil, err
	}
	return out, s.audit(ctx, tx, "transferCredits", "Pool", from.ID, &from.OrganizationID, nil,
		map[string]any{"fromPoolId": from.ID, "toPoolId": to.ID, "amount": in.Amount.String(), "memo": in.Memo, "entries": len(out)})
}

// movedSince sums what a pool transferred out since t.
func (s *Service) movedSince(ctx context.Context, tx *ent.Tx, pool int, t time.Time) (decimal.Decimal, error) {
	es, err := tx.LedgerEntry.Query().Where(ledgerentry.PoolID(pool), ledgerentry.KindEQ(credit.EntryTransferOut),
		ledgerentry.CreatedAtGTE(t)).Select(ledgerentry.FieldAmount).All(ctx)
	sum := decimal.Zero
	for _, e := range es {
		sum = sum.Sub(e.Amount)
	}
	return sum, err
}
