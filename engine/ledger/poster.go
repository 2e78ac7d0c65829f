package ledger

import (
	"context"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/grant"
)

// The poster writes what the engine decided. post is the only code that
// creates grants or changes what a grant holds outside a usage batch, whose
// bulk writer (write.go) is the same poster for usage events: it writes
// their BURN, EXPIRE, BORROW, OVERAGE and UNCOVERED entries (entryRows) and
// the grants' new remaining amounts computed under the batch's pool locks.
// Every grant has one cause: the posting that opened it, with its opening
// entry (the verifier checks there is exactly one).

// post writes a posting in the caller's transaction, under the caller's
// locks on the pools it touches: the grants it opens with their opening
// entries, its moves as entries with each grant's remaining changed by
// their sum, and its charges. It returns the opened grants in the order of
// p.Open.
func (s *Service) post(ctx context.Context, c *ent.Client, p engine.Posting, now time.Time) ([]*ent.Grant, error) {
	opened, err := s.open(ctx, c, p, now)
	if err != nil {
		return nil, err
	}
	if err := s.move(ctx, c, p, now); err != nil {
		return nil, err
	}
	if len(p.Charges) == 0 {
		return opened, nil
	}
	charges := make([]*ent.ChargeCreate, len(p.Charges))
	for n, ch := range p.Charges {
		cc := c.Charge.Create().SetOrganizationID(p.Org).SetKind(ch.Kind).SetCredits(ch.Credits).SetAmount(ch.Amount).
			SetCurrency(ch.Currency).SetNillableSubscriptionID(ch.SubscriptionID).SetNillablePeriodStart(ch.PeriodStart).
			SetMemo(ch.Memo).SetCreatedAt(now)
		if ch.Opening != nil {
			cc.SetGrantID(opened[*ch.Opening].ID)
		}
		charges[n] = cc
	}
	return opened, c.Charge.CreateBulk(charges...).Exec(ctx)
}

func (s *Service) open(ctx context.Context, c *ent.Client, p engine.Posting, now time.Time) ([]*ent.Grant, error) {
	if len(p.Open) == 0 {
		return nil, nil
	}
	creates := make([]*ent.GrantCreate, len(p.Open))
	for n, o := range p.Open {
		gc := c.Grant.Create().SetOrganizationID(p.Org).SetPoolID(o.Pool).SetCreditType(o.CreditType).
			SetAmount(o.Amount).SetRemaining(o.Amount).SetUnitPrice(o.UnitPrice).SetEffectiveAt(utc(o.EffectiveAt)).
			SetMemo(o.Memo).SetCreatedAt(now)
		if o.Priority != nil {
			gc.SetPriority(*o.Priority)
		}
		if o.ExpiresAt != nil {
			gc.SetExpiresAt(utc(*o.ExpiresAt))
		}
		creates[n] = gc
	}
	gs, err := c.Grant.CreateBulk(creates...).Save(ctx)
	if err != nil {
		return nil, mapEntError(err, "grant", "")
	}
	entries := make([]*ent.LedgerEntryCreate, len(gs))
	for n, g := range gs {
		kind := p.Open[n].Kind
		if kind == "" {
			kind = credit.EntryGrant
		}
		entries[n] = c.LedgerEntry.Create().SetOrganizationID(p.Org).SetPoolID(g.PoolID).SetGrantID(g.ID).
			SetKind(kind).SetAmount(g.Amount).SetMemo(g.Memo).SetCreatedAt(now)
	}
	return gs, c.LedgerEntry.CreateBulk(entries...).Exec(ctx)
}

func (s *Service) move(ctx context.Context, c *ent.Client, p engine.Posting, now time.Time) error {
	if len(p.Moves) == 0 {
		return nil
	}
	delta := map[int]decimal.Decimal{}
	entries := make([]*ent.LedgerEntryCreate, len(p.Moves))
	for n, m := range p.Moves {
		delta[m.Grant] = delta[m.Grant].Add(m.Amount)
		entries[n] = c.LedgerEntry.Create().SetOrganizationID(p.Org).SetPoolID(m.Pool).SetGrantID(m.Grant).
			SetKind(m.Kind).SetAmount(m.Amount).SetNillableUsageEventID(m.UsageEvent).SetMemo(m.Memo).SetCreatedAt(now)
	}
	if err := c.LedgerEntry.CreateBulk(entries...).Exec(ctx); err != nil {
		return err
	}
	ids := make([]int, 0, len(delta))
	for id := range delta {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	gs, err := c.Grant.Query().Where(grant.IDIn(ids...)).Select(grant.FieldID, grant.FieldRemaining).All(ctx)
	if err != nil {
		return err
	}
	for _, g := range gs {
		if err := c.Grant.UpdateOneID(g.ID).SetRemaining(g.Remaining.Add(delta[g.ID])).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}
