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
	// capCredits and overageUsed: the buyer's overage cap in credits and
	// the period's overage so far, when the organisation has a cap.
	capCredits, overageUsed decimal.Decimal
	// onDemandBought: the period's on-demand credits so far, under
	// on-demand tiers (AUTO_TOP_UP packs are priced from it).
	onDemandBought decimal.Decimal
}

// overageWarnAt is the share of the overage cap past which an OVERAGE_CAP
// alert is raised.
var overageWarnAt = decimal.RequireFromString("0.8")

// capped takes overage off what the cap still allows and returns the
// alert message when the period's overage crosses overageWarnAt of it.
func (ts *termsState) capped(overage decimal.Decimal) (string, bool) {
	t := ts.terms
	t.OverageLeft = decimal.Max(t.OverageLeft.Sub(overage), decimal.Zero)
	before := ts.overageUsed
	ts.overageUsed = ts.overageUsed.Add(overage)
	warn := ts.capCredits.Mul(overageWarnAt)
	if before.LessThan(warn) && !ts.overageUsed.LessThan(warn) {
		return fmt.Sprintf("overage this period is %s credits, past %s of the overage cap of %s", ts.overageUsed, overageWarnAt, ts.capCredits), true
	}
	return "", false
}

// caps loads (once per batch and subscription) what the period has used of
// its top-up cap and borrow limit, into the shared terms.
func (s *Service) caps(ctx context.Context, tx *usageTx, st map[int]*termsState, t *engine.PlanTerms, segment string, now time.Time) (*termsState, error) {
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
		t.TopUpThreshold, t.TopUpCredits, t.OnDemandPrice = p.AutoTopUpThreshold.Decimal, p.AutoTopUpCredits.Decimal, planPrices(p, segment).OnDemand.Decimal
		t.TopUpsLeft = -1
		if len(p.OnDemandTiers) > 0 {
			if ts.onDemandBought, err = onDemandBought(ctx, tx.Client, sub.ID, ts.start); err != nil {
				return nil, err
			}
		}
		if p.AutoTopUpCap != nil {
			n, err := tx.Charge.Query().Where(charge.SubscriptionID(sub.ID), charge.Kind("AUTO_TOP_UP"), charge.CreatedAtGTE(ts.start)).Count(ctx)
			if err != nil {
				return nil, err
			}
			t.TopUpsLeft = max(*p.AutoTopUpCap-n, 0)
		}
	}
	if t.OverageCap != nil || len(t.OverageTiers) > 0 {
		if err := s.overageSoFar(ctx, tx, ts, now); err != nil {
			return nil, err
		}
	}
	switch p.OverageMode {
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

// overageSoFar loads the period's overage so far (for overage tiers) and
// what the buyer's overage cap still allows. The organisation's row is
// locked first, so that concurrent batches on its pools (which lock only
// their own pools) take overage one at a time: they never pass the cap
// together, nor price two overages from the same tier position.
func (s *Service) overageSoFar(ctx context.Context, tx *usageTx, ts *termsState, now time.Time) error {
	org := ts.sub.OrganizationID
	if s.postgres() {
		rows, err := tx.tx.QueryContext(ctx, "SELECT id FROM organizations WHERE id = $1 FOR UPDATE", org)
		if err != nil {
			return err
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	o, err := tx.Organization.Get(ctx, org) // again, under the lock: the cap may have changed
	if err != nil {
		return err
	}
	used, err := sumEntries(ctx, tx.Client, org, credit.EntryOverage, ts.start, now.Add(time.Hour))
	if err != nil {
		return err
	}
	ts.terms.OverageSoFar = used
	c := engine.OverageCap{Credits: o.OverageCapCredits, Amount: o.OverageCapAmount}
	capCredits, ok := c.InCredits(ts.terms.OveragePrice)
	if !ok {
		ts.terms.OverageCap = nil
		return nil
	}
	ts.capCredits, ts.overageUsed = capCredits, used
	ts.terms.OverageCap, ts.terms.OverageLeft = &c, decimal.Max(capCredits.Sub(used), decimal.Zero)
	return nil
}

// borrowed sums the credits an organisation borrowed in [from, to).
func (s *Service) borrowed(ctx context.Context, c *ent.Client, org int, from, to time.Time) (decimal.Decimal, error) {
	return sumEntries(ctx, c, org, credit.EntryBorrow, from, to)
}

// sumEntries is minus the sum of an organisation's entries of kind in
// [from, to): the credits they took.
func sumEntries(ctx context.Context, c *ent.Client, org int, kind credit.EntryKind, from, to time.Time) (decimal.Decimal, error) {
	es, err := c.LedgerEntry.Query().Where(ledgerentry.OrganizationID(org), ledgerentry.KindEQ(kind),
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
	amount := engine.Graduated(p.OnDemandTiers, t.OnDemandPrice, ts.onDemandBought, t.TopUpCredits)
	ts.onDemandBought = ts.onDemandBought.Add(t.TopUpCredits)
	gs, err := s.post(ctx, tx.Client, engine.Posting{Org: sub.OrganizationID,
		Open: []engine.Opening{{Pool: sub.PoolID, CreditType: credit.CreditOnDemand, Amount: t.TopUpCredits, UnitPrice: unitPrice(amount, t.TopUpCredits),
			EffectiveAt: now, ExpiresAt: expires, Memo: "auto top-up"}},
		Charges: []engine.Charge{{Kind: "AUTO_TOP_UP", Credits: t.TopUpCredits, Amount: amount, Currency: p.Currency,
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
