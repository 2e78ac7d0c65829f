package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/ent/ledgerentry"
)

// The ledger side of the AUTO_TOP_UP and BORROW overage modes (the pure
// decisions are engine.shortfall, engine.TopUpsFor and engine.TopUpAfter):
// what the current period has used of its caps, and buying packs inside the
// usage transaction.

// termsState is a batch's view of one subscription's overage caps.
type termsState struct {
	terms *engine.PlanTerms
	sub   *ent.Subscription
	plan  *ent.Plan
	start time.Time // the subscription period containing now
	ready bool
}

// caps loads (once per batch and subscription) what the period has used of
// its top-up cap and borrow limit, into the shared terms.
func (s *Service) caps(ctx context.Context, tx *usageTx, st map[int]*termsState, t *engine.PlanTerms, now time.Time) (*termsState, error) {
	ts := st[t.SubscriptionID]
	if ts == nil {
		ts = &termsState{terms: t}
		st[t.SubscriptionID] = ts
	}
	if ts.ready {
		return ts, nil
	}
	sub, err := tx.Subscription.Get(ctx, t.SubscriptionID)
	if err != nil {
		return nil, err
	}
	p, err := tx.Plan.Get(ctx, t.PlanID)
	if err != nil {
		return nil, err
	}
	sched := schedule(sub, p)
	ts.sub, ts.plan, ts.start = sub, p, sched.Boundary(sched.Index(now))
	switch p.OverageMode {
	case credit.OverageAutoTopUp:
		t.TopUpThreshold, t.TopUpCredits, t.OnDemandPrice = p.AutoTopUpThreshold.Decimal, p.AutoTopUpCredits.Decimal, p.OnDemandPrice.Decimal
		t.TopUpsLeft = -1
		if p.AutoTopUpCap != nil {
			n, err := tx.Charge.Query().Where(charge.SubscriptionID(sub.ID), charge.Kind("AUTO_TOP_UP"), charge.CreatedAtGTE(ts.start)).Count(ctx)
			if err != nil {
				return nil, err
			}
			t.TopUpsLeft = max(*p.AutoTopUpCap-n, 0)
		}
	case credit.OverageBorrow:
		borrowed, err := s.borrowed(ctx, tx.Client, sub.OrganizationID, ts.start, now.Add(time.Hour))
		if err != nil {
			return nil, err
		}
		t.BorrowLeft = decimal.Max(p.BorrowLimit.Decimal.Sub(borrowed), decimal.Zero)
	}
	ts.ready = true
	return ts, nil
}

// borrowed sums the credits an organisation borrowed in [from, to).
func (s *Service) borrowed(ctx context.Context, c *ent.Client, org int, from, to time.Time) (decimal.Decimal, error) {
	es, err := c.LedgerEntry.Query().Where(ledgerentry.OrganizationID(org), ledgerentry.KindEQ(credit.EntryBorrow),
		ledgerentry.CreatedAtGTE(from), ledgerentry.CreatedAtLT(to)).All(ctx)
	if err != nil {
		return decimal.Zero, err
	}
	sum := decimal.Zero
	for _, e := range es {
		sum = sum.Sub(e.Amount)
	}
	return sum, nil
}

// buyPack buys one AUTO_TOP_UP pack into the subscription's pool: an
// ON_DEMAND grant at the plan's on-demand price, its GRANT entry and an
// AUTO_TOP_UP charge. It returns the new grant as the engine sees it.
func (s *Service) buyPack(ctx context.Context, tx *usageTx, ts *termsState, now time.Time) (engine.Grant, error) {
	p, sub, t := ts.plan, ts.sub, ts.terms
	var expires *time.Time
	if p.OnDemandExpiryDays != nil {
		e := now.AddDate(0, 0, *p.OnDemandExpiryDays)
		expires = &e
	}
	subID, start, first := sub.ID, ts.start, 0
	gs, err := s.post(ctx, tx.Client, engine.Posting{Org: sub.OrganizationID,
		Open: []engine.Opening{{Pool: sub.PoolID, CreditType: credit.CreditOnDemand, Amount: t.TopUpCredits, UnitPrice: t.OnDemandPrice,
			EffectiveAt: now, ExpiresAt: expires, Memo: "auto top-up"}},
		Charges: []engine.Charge{{Kind: "AUTO_TOP_UP", Credits: t.TopUpCredits, Amount: t.TopUpCredits.Mul(t.OnDemandPrice), Currency: p.Currency,
			SubscriptionID: &subID, PeriodStart: &start, Opening: &first, Memo: fmt.Sprintf("auto top-up of %s credits", t.TopUpCredits)}}}, now)
	if err != nil {
		return engine.Grant{}, err
	}
	g := gs[0]
	if t.TopUpsLeft > 0 {
		t.TopUpsLeft--
	}
	return engineGrant(g), nil
}
