package ledger

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/ent/grant"
)

// DefaultPaymentWindow is how long credits may wait for payment.
const DefaultPaymentWindow = 7 * 24 * time.Hour

// PaymentInput confirms or fails the payment of a grant waiting for it
// (see engine.ConfirmPayment). Both are idempotent by the grant's state:
// confirming a PAID grant or failing a FAILED one returns it unchanged.
type PaymentInput struct {
	GrantID int
	Reason  string // failPayment only: why, for the charge's memo and the audit log
}

// ConfirmPayment confirms a pending grant's payment: its credits arrive
// (the opening GRANT entry), in one transaction with its pool locked.
func (s *Service) ConfirmPayment(ctx context.Context, in PaymentInput) (*ent.Grant, error) {
	return s.settlePayment(ctx, in.GrantID, "confirmPayment", func(_ context.Context, _ *ent.Tx, g *ent.Grant) (engine.Posting, error) {
		return engine.ConfirmPayment(g.OrganizationID, g.PoolID, engineGrant(g), s.Now())
	})
}

// FailPayment fails a pending grant's payment: it never holds credits, and
// the charge that billed it is reversed.
func (s *Service) FailPayment(ctx context.Context, in PaymentInput) (*ent.Grant, error) {
	if err := checkReason(in.Reason); err != nil {
		return nil, err
	}
	return s.settlePayment(ctx, in.GrantID, "failPayment", s.failDecision("payment failed: "+in.Reason))
}

// FailUnpaid fails the payment of every grant whose payment window ran
// out by now, one grant per transaction, and returns how many it failed.
// Idempotent and safe with several servers: a grant confirmed or failed
// meanwhile is left as it is.
func (s *Service) FailUnpaid(ctx context.Context, now time.Time) (int, error) {
	due, err := s.db.Client.Grant.Query().Where(grant.PaymentEQ(credit.PaymentPending), grant.PaymentDueAtLTE(now)).IDs(ctx)
	if err != nil {
		return 0, err
	}
	failed := 0
	for _, id := range due {
		g, err := s.settlePayment(ctx, id, "failUnpaid", s.failDecision("payment window ran out"))
		if err != nil {
			return failed, err
		}
		if g.Payment == credit.PaymentFailed {
			failed++
		}
	}
	return failed, nil
}

// failDecision decides a failed payment, with the charge that billed the
// grant (its first positive charge) and what was given back of it.
func (s *Service) failDecision(memo string) func(context.Context, *ent.Tx, *ent.Grant) (engine.Posting, error) {
	return func(ctx context.Context, tx *ent.Tx, g *ent.Grant) (engine.Posting, error) {
		billed, err := billingCharge(ctx, tx, g.ID)
		if err != nil {
			return engine.Posting{}, err
		}
		return engine.FailPayment(g.OrganizationID, engineGrant(g), billed, truncate(memo, 500))
	}
}

// paymentDue is when a grant opened now waits for payment until, if it
// does (pending): nil otherwise.
func (s *Service) paymentDue(pending bool, now time.Time) *time.Time {
	if !pending {
		return nil
	}
	due := now.Add(s.paymentWindow)
	return &due
}

// settlePayment reads grant id under its pool's lock, decides with decide
// and posts, audits and returns the grant as it is afterwards. A decision
// that changes nothing (already settled) writes nothing.
func (s *Service) settlePayment(ctx context.Context, id int, op string, decide func(context.Context, *ent.Tx, *ent.Grant) (engine.Posting, error)) (*ent.Grant, error) {
	var out *ent.Grant
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		g, err := tx.Grant.Get(ctx, id)
		if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(g.OrganizationID) {
			return credit.NotFound("grant", id)
		} else if err != nil {
			return err // a fault, not bad input
		}
		if err := s.lockRow(ctx, tx, "pools", g.PoolID); err != nil {
			return err
		}
		if g, err = tx.Grant.Get(ctx, id); err != nil { // again, under the lock
			return err
		}
		p, err := decide(ctx, tx, g)
		if err != nil {
			return err
		}
		if out = g; len(p.Payments) == 0 {
			return nil
		}
		if _, err := s.post(ctx, tx.Client(), p, s.Now()); err != nil {
			return err
		}
		if out, err = tx.Grant.Get(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, op, "Grant", g.ID, &g.OrganizationID, g, out)
	})
	return out, err
}

// billingCharge is the charge that billed grant id (its first positive
// charge), with what refunds gave back of it; nil when none did.
func billingCharge(ctx context.Context, tx *ent.Tx, id int) (*engine.PaidCharge, error) {
	chs, err := tx.Charge.Query().Where(charge.GrantID(id)).Order(ent.Asc(charge.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	var paid *engine.PaidCharge
	for _, ch := range chs {
		switch {
		case paid == nil && ch.Amount.IsPositive() && ch.RefundOf == nil:
			paid = &engine.PaidCharge{ID: ch.ID, Kind: ch.Kind, Amount: ch.Amount, Refunded: decimal.Zero, Currency: ch.Currency, SubscriptionID: ch.SubscriptionID,
				AddOn: ch.AddOnID}
		case paid != nil && ch.RefundOf != nil && *ch.RefundOf == paid.ID:
			paid.Refunded = paid.Refunded.Sub(ch.Amount)
		}
	}
	return paid, nil
}
