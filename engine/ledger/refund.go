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
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/ent/poolspend"
)

// RefundInput refunds (part of) what a usage event charged.
type RefundInput struct {
	UsageEventID   *int
	GrantID        *int // or the unused credits of a purchased grant (refundGrant)
	Amount         *decimal.Decimal
	Reason         string
	AsService      bool // as SERVICE credits (an SLA breach), not back to the grants
	IdempotencyKey string
}

// checkReason validates the reason a refund or void is given: 1 to 500
// bytes of UTF-8 without NUL.
func checkReason(reason string) error {
	switch {
	case reason == "" || len(reason) > 500:
		return credit.Invalid("reason", "must be 1 to 500 characters")
	case !utf8.ValidString(reason):
		return credit.Invalid("reason", "is not valid UTF-8")
	}
	return engine.CheckText("reason", reason)
}

// Validate checks what can be checked without the database.
func (in RefundInput) Validate() error {
	switch {
	case (in.UsageEventID == nil) == (in.GrantID == nil):
		return credit.Invalid("usageEventId", "name exactly one of usageEventId and grantId")
	case in.Amount != nil && !in.Amount.IsPositive():
		return credit.Invalid("amount", "must be greater than zero, got %s", in.Amount)
	}
	if err := checkReason(in.Reason); err != nil {
		return err
	}
	return checkKey(in.IdempotencyKey)
}

// Refund refunds a usage event in one transaction: load (the event's pool
// and the pools it drew from locked in id order, its draws, what earlier
// refunds gave back, its overage and the price it was billed at), decide
// (engine.Refund), post, audit. Refunds of one event never add up to more
// than it charged: a second refund waits for the first's locks and sees its
// entries. It returns the entries written (REFUND entries, and the opening
// entries of new grants: successors of expired grants, SERVICE credits).
func (s *Service) Refund(ctx context.Context, in RefundInput) ([]*ent.LedgerEntry, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if in.GrantID != nil {
		return s.refundGrant(ctx, in)
	}
	now := s.Now()
	snap, err := s.catalog.current(ctx)
	if err != nil {
		return nil, err
	}
	var out []*ent.LedgerEntry
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		ev, err := tx.UsageEvent.Get(ctx, *in.UsageEventID)
		if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(ev.OrganizationID) {
			return credit.NotFound("usage event", *in.UsageEventID)
		} else if err != nil {
			return err // a fault, not bad input
		}
		out, err = s.keyedEntries(ctx, tx, ev.OrganizationID, in.IdempotencyKey, "refund", in, func() ([]*ent.LedgerEntry, error) {
			return s.refund(ctx, tx, snap, ev, in, now)
		})
		return err
	})
	return out, err
}

// keyedEntries runs work under an idempotency key (see keyed) and returns
// the entries it wrote; a retry returns the first attempt's entries.
func (s *Service) keyedEntries(ctx context.Context, tx *ent.Tx, org int, key, op string, in any, work func() ([]*ent.LedgerEntry, error)) ([]*ent.LedgerEntry, error) {
	var out []*ent.LedgerEntry
	ids, replay, err := s.keyed(ctx, tx, org, key, op, in, func() ([]int, error) {
		es, err := work()
		ids := make([]int, len(es))
		for i, e := range es {
			ids[i] = e.ID
		}
		out = es
		return ids, err
	})
	if err == nil && replay {
		out, err = tx.LedgerEntry.Query().Where(ledgerentry.IDIn(ids...)).Order(ent.Asc(ledgerentry.FieldID)).All(ctx)
	}
	return out, err
}

func (s *Service) refund(ctx context.Context, tx *ent.Tx, snap *snapshot, ev *ent.UsageEvent, in RefundInput, now time.Time) ([]*ent.LedgerEntry, error) {
	entries, err := tx.LedgerEntry.Query().Where(ledgerentry.UsageEventID(ev.ID)).Order(ent.Asc(ledgerentry.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	chain, err := budgetChain(ctx, tx, ev.PoolID)
	if err != nil {
		return nil, err
	}
	pools := setOf(chain)
	for _, e := range entries {
		pools[e.PoolID] = true
	}
	if err := s.lockIDs(ctx, tx, "pools", sortedKeys(pools)); err != nil {
		return nil, err
	}
	// Read again under the locks: a refund that held them may have added entries.
	if entries, err = tx.LedgerEntry.Query().Where(ledgerentry.UsageEventID(ev.ID)).Order(ent.Asc(ledgerentry.FieldID)).All(ctx); err != nil {
		return nil, err
	}
	req, err := s.refundRequest(ctx, tx, ev, entries)
	if err != nil {
		return nil, err
	}
	req.Amount, req.AsService, req.Memo = in.Amount, in.AsService, truncate("refund: "+in.Reason, 500)
	charged := req.Ask.Charged
	if req.Rule, req.Ask, err = s.refundAsk(ctx, tx, snap, ev, in.Reason, now); err != nil {
		return nil, err
	}
	req.Ask.Charged = charged
	p, err := engine.Refund(ctx, req, now)
	if err != nil {
		return nil, err
	}
	_, out, err := s.postEntries(ctx, tx, []engine.Posting{p}, now, ledgerentry.UsageEventID(ev.ID))
	if err != nil {
		return nil, err
	}
	back := decimal.Zero
	for _, e := range out {
		back = back.Add(e.Amount)
	}
	if err := giveBudgetBack(ctx, tx, chain, ev.CreatedAt, back, now); err != nil {
		return nil, err
	}
	return out, s.audit(ctx, tx, "refund", "UsageEvent", ev.ID, &ev.OrganizationID, nil,
		map[string]any{"usageEventId": ev.ID, "reason": in.Reason, "asService": in.AsService, "entries": len(out)})
}

// refundRequest is what the event drew, overran and had refunded, as the
// engine needs it.
func (s *Service) refundRequest(ctx context.Context, tx *ent.Tx, ev *ent.UsageEvent, entries []*ent.LedgerEntry) (engine.RefundRequest, error) {
	req := engine.RefundRequest{Org: ev.OrganizationID, Pool: ev.PoolID, Event: ev.ID, Overage: decimal.Zero, OveragePrice: decimal.Zero}
	if ev.Decision == credit.DecisionDenied {
		return req, nil // nothing to refund
	}
	byGrant := refundSources(&req, entries)
	req.GivenAsGrants(refundedBefore(&req, entries, byGrant))
	grantIDs := make([]int, 0, len(byGrant))
	for id := range byGrant {
		grantIDs = append(grantIDs, id)
	}
	gs, err := tx.Grant.Query().Where(grant.IDIn(grantIDs...)).All(ctx)
	if err != nil {
		return req, err
	}
	for _, g := range gs {
		req.Sources[byGrant[g.ID]].Grant = engineGrant(g)
	}
	if !req.Overage.IsPositive() {
		return req, nil
	}
	chs, err := tx.Charge.Query().Where(charge.UsageEventID(ev.ID), charge.Kind("OVERAGE")).Order(ent.Asc(charge.FieldID)).All(ctx)
	if err != nil {
		return req, err
	}
	if len(chs) > 0 && chs[0].Credits.IsPositive() { // the first is what the event billed
		ch := chs[0]
		req.OveragePrice, req.Currency, req.SubscriptionID = ch.Amount.Div(ch.Credits), ch.Currency, ch.SubscriptionID
		req.Ask.Charged = ch.Amount
	}
	return req, nil
}

// refundSources fills req's draws (by grant, in draw order) and overage
// from the event's entries (overage already refunded as money taken off),
// and returns where each grant's draw is in req.Sources.
func refundSources(req *engine.RefundRequest, entries []*ent.LedgerEntry) map[int]int {
	byGrant := map[int]int{}
	for _, e := range entries {
		switch {
		case e.Kind == credit.EntryBurn && e.GrantID != nil:
			i, ok := byGrant[*e.GrantID]
			if !ok {
				i = len(req.Sources)
				byGrant[*e.GrantID] = i
				req.Sources = append(req.Sources, engine.RefundSource{Pool: e.PoolID, Drawn: decimal.Zero, Refunded: decimal.Zero})
			}
			req.Sources[i].Drawn = req.Sources[i].Drawn.Sub(e.Amount)
		case e.Kind == credit.EntryOverage, e.Kind == credit.EntryRefund && e.GrantID == nil:
			req.Overage = req.Overage.Sub(e.Amount) // billed, or given back as money
		}
	}
	return byGrant
}

// refundedBefore counts earlier refunds back to a grant on its draw, and
// returns what earlier refunds gave as new grants (successors, SERVICE
// credits), whose opening entries name the event.
func refundedBefore(req *engine.RefundRequest, entries []*ent.LedgerEntry, byGrant map[int]int) decimal.Decimal {
	given := decimal.Zero
	for _, e := range entries {
		switch {
		case e.Kind == credit.EntryRefund && e.GrantID != nil:
			if i, ok := byGrant[*e.GrantID]; ok {
				req.Sources[i].Refunded = req.Sources[i].Refunded.Add(e.Amount)
			}
		case e.Kind == credit.EntryGrant:
			given = given.Add(e.Amount)
		}
	}
	return given
}

// VoidInput voids a grant made by mistake.
type VoidInput struct {
	GrantID        int
	Reason         string
	IdempotencyKey string
}

// VoidGrant voids what is left of a grant (a VOID entry), in one
// transaction with its pool locked, and audits it. It returns the entry.
func (s *Service) VoidGrant(ctx context.Context, in VoidInput) (*ent.LedgerEntry, error) {
	if err := checkReason(in.Reason); err != nil {
		return nil, err
	}
	if err := checkKey(in.IdempotencyKey); err != nil {
		return nil, err
	}
	now := s.Now()
	var out *ent.LedgerEntry
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		g, err := tx.Grant.Get(ctx, in.GrantID)
		if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(g.OrganizationID) {
			return credit.NotFound("grant", in.GrantID)
		} else if err != nil {
			return err // a fault, not bad input
		}
		if err := s.lockRow(ctx, tx, "pools", g.PoolID); err != nil {
			return err
		}
		ids, replay, err := s.keyed(ctx, tx, g.OrganizationID, in.IdempotencyKey, "voidGrant", in, func() ([]int, error) {
			if g, err = tx.Grant.Get(ctx, in.GrantID); err != nil { // again, under the lock
				return nil, err
			}
			p, err := engine.Void(g.OrganizationID, g.PoolID, engineGrant(g), truncate("void: "+in.Reason, 500))
			if err != nil {
				return nil, err
			}
			_, es, err := s.postEntries(ctx, tx, []engine.Posting{p}, now, ledgerentry.GrantID(g.ID), ledgerentry.KindEQ(credit.EntryVoid))
			if err != nil {
				return nil, err
			}
			out = es[0]
			return []int{out.ID}, s.audit(ctx, tx, "voidGrant", "Grant", g.ID, &g.OrganizationID, g, map[string]any{"reason": in.Reason, "voided": p.Moves[0].Amount.Neg().String()})
		})
		if err == nil && replay {
			out, err = tx.LedgerEntry.Get(ctx, ids[0])
		}
		return err
	})
	return out, err
}

// refundAsk is the REFUND policy in effect and what it is told of the
// refund: the caller's role, the reason, the event, its organisation, its
// age.
func (s *Service) refundAsk(ctx context.Context, tx *ent.Tx, snap *snapshot, ev *ent.UsageEvent, reason string, now time.Time) (*engine.Rule, engine.RefundAsk, error) {
	rule, ask, err := s.refundPolicy(ctx, tx, snap, ev.OrganizationID, reason, ev.CreatedAt, now)
	ask.Event = engine.Event{Action: ev.Action, Status: ev.Status, RunID: ev.RunID, Quantity: ev.Quantity, Completion: ev.Completion,
		Attempt: ev.Attempt, Properties: ev.Properties, OccurredAt: ev.OccurredAt}
	return rule, ask, err
}

// refundPolicy is the REFUND policy in effect and what every refund tells
// it: the caller's role, the reason, the organisation and the age in hours
// of what is refunded (recorded at since).
func (s *Service) refundPolicy(ctx context.Context, tx *ent.Tx, snap *snapshot, org int, reason string, since, now time.Time) (*engine.Rule, engine.RefundAsk, error) {
	snap, err := s.catalog.fresh(ctx, tx.Client(), snap)
	if err != nil {
		return nil, engine.RefundAsk{}, err
	}
	v, err := snap.versions("", nil, now)
	if err != nil {
		return nil, engine.RefundAsk{}, err
	}
	o, err := tx.Organization.Get(ctx, org)
	if err != nil {
		return nil, engine.RefundAsk{}, err
	}
	role := credit.RoleOperator // internal callers (no key) act as the operator
	if p := auth.From(ctx); p != nil {
		role = p.Role
	}
	age := decimal.NewFromInt(int64(now.Sub(since) / time.Second)).Div(decimal.NewFromInt(3600))
	return v.Refund, engine.RefundAsk{Role: role, Reason: reason, Org: engine.Org{ID: o.ID, Segment: o.Segment}, AgeHours: age, Charged: decimal.Zero}, nil
}

// budgetChain is the pool and the pools above it that it falls through to:
// the pools whose budgets counted its usage.
func budgetChain(ctx context.Context, tx *ent.Tx, pool int) ([]int, error) {
	var chain []int
	for id := pool; id != 0 && len(chain) < 4; {
		p, err := tx.Pool.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		chain = append(chain, p.ID)
		if id = 0; p.FallThrough && p.ParentID != nil {
			id = *p.ParentID
		}
	}
	return chain, nil
}

// giveBudgetBack takes a refund off the spend of the chain's budgets, in
// the budget period that counted the event (a refund in a later period
// gives nothing back: that period's spend never counted it). The caller
// holds the pools' locks.
func giveBudgetBack(ctx context.Context, tx *ent.Tx, chain []int, counted time.Time, back decimal.Decimal, now time.Time) error {
	if !back.IsPositive() {
		return nil
	}
	for _, id := range chain {
		p, err := tx.Pool.Get(ctx, id)
		if err != nil {
			return err
		}
		if !p.BudgetAmount.Valid || p.BudgetPeriod == nil {
			continue
		}
		start := engine.BudgetPeriodStart(*p.BudgetPeriod, now)
		if !engine.BudgetPeriodStart(*p.BudgetPeriod, counted).Equal(start) {
			continue
		}
		row, err := tx.PoolSpend.Query().Where(poolspend.PoolID(id), poolspend.PeriodStart(start)).Only(ctx)
		if ent.IsNotFound(err) {
			continue
		} else if err != nil {
			return err
		}
		if err := tx.PoolSpend.UpdateOne(row).SetSpent(decimal.Max(row.Spent.Sub(back), decimal.Zero)).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}
