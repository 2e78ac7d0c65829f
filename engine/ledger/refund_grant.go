package ledger

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/ledgerentry"
)

// refundGrant refunds unused credits of a purchased grant in one
// transaction: the grant's pool locked, the grant read again under the
// lock (what is unused cannot be drawn, moved or refunded meanwhile), the
// charge that paid for it and what earlier refunds gave back of it,
// decided by engine.RefundGrant, posted, audited. It returns the entries
// written: the REFUND entry on the grant and, as SERVICE credits, the new
// grant's opening entry.
func (s *Service) refundGrant(ctx context.Context, in RefundInput) ([]*ent.LedgerEntry, error) {
	now := s.Now()
	snap, err := s.catalog.current(ctx)
	if err != nil {
		return nil, err
	}
	var out []*ent.LedgerEntry
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		g, err := tx.Grant.Get(ctx, *in.GrantID)
		if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(g.OrganizationID) {
			return credit.NotFound("grant", *in.GrantID)
		} else if err != nil {
			return err // a fault, not bad input
		}
		if err := s.lockRow(ctx, tx, "pools", g.PoolID); err != nil {
			return err
		}
		out, err = s.keyedEntries(ctx, tx, g.OrganizationID, in.IdempotencyKey, "refund", in, func() ([]*ent.LedgerEntry, error) {
			if g, err = tx.Grant.Get(ctx, g.ID); err != nil { // again, under the lock
				return nil, err
			}
			return s.refundOneGrant(ctx, tx, snap, g, in, now)
		})
		return err
	})
	return out, err
}

// refundOneGrant decides, posts and audits the refund of grant g, read
// under its pool's lock, and returns the entries it wrote.
func (s *Service) refundOneGrant(ctx context.Context, tx *ent.Tx, snap *snapshot, g *ent.Grant, in RefundInput, now time.Time) ([]*ent.LedgerEntry, error) {
	req, err := s.grantRefundRequest(ctx, tx, snap, g, in, now)
	if err != nil {
		return nil, err
	}
	p, err := engine.RefundGrant(ctx, req, now)
	if err != nil {
		return nil, err
	}
	_, es, err := s.postEntries(ctx, tx, []engine.Posting{p}, now, ledgerentry.PoolID(g.PoolID))
	if err != nil {
		return nil, err
	}
	money := decimal.Zero
	for _, ch := range p.Charges {
		money = money.Sub(ch.Amount)
	}
	return es, s.audit(ctx, tx, "refund", "Grant", g.ID, &g.OrganizationID, g, map[string]any{"grantId": g.ID, "reason": in.Reason,
		"credits": p.Moves[0].Amount.Neg().String(), "asService": len(p.Open) > 0, "moneyBack": money.String()})
}

// grantRefundRequest is the grant, the charge that paid for it (the first
// positive charge naming it) with what refunds gave back of it, and the
// REFUND policy's view, as the engine needs them.
func (s *Service) grantRefundRequest(ctx context.Context, tx *ent.Tx, snap *snapshot, g *ent.Grant, in RefundInput, now time.Time) (engine.GrantRefundRequest, error) {
	req := engine.GrantRefundRequest{Org: g.OrganizationID, Pool: g.PoolID, Grant: engineGrant(g), Amount: in.Amount, AsService: in.AsService,
		Memo: truncate("refund: "+in.Reason, 500)}
	var err error
	if req.Paid, err = billingCharge(ctx, tx, g.ID); err != nil {
		return req, err
	}
	if req.Rule, req.Ask, err = s.refundPolicy(ctx, tx, snap, g.OrganizationID, in.Reason, g.CreatedAt, now); err != nil {
		return req, err
	}
	if req.Paid != nil {
		req.Ask.Charged = req.Paid.Amount
	}
	return req, nil
}
