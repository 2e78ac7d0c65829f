package ledger

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/ent/predicate"
)

// The poster writes what the engine decided. post is the only code that
// creates grants or changes what a grant holds outside a usage batch, whose
// bulk writer (write.go) is the same poster for usage events: it writes
// their BURN, EXPIRE, BORROW, OVERAGE and UNCOVERED entries (entryRows) and
// the grants' new remaining amounts computed under the batch's pool locks.
// Every grant has one cause: the posting that opened it, with its opening
// entry (the verifier checks there is exactly one); a grant waiting for
// payment gets it when its payment is confirmed, a failed one never.

// post writes a posting in the caller's transaction, under the caller's
// locks on the pools it touches: the grants it opens with their opening
// entries, its moves as entries with each grant's remaining changed by
// their sum, and its charges. It returns the opened grants in the order of
// p.Open.
func (s *Service) post(ctx context.Context, c *ent.Client, p engine.Posting, now time.Time) ([]*ent.Grant, error) {
	opened, err := s.postAll(ctx, c, []engine.Posting{p}, now)
	if err != nil {
		return nil, err
	}
	return opened[0], nil
}

// postMax bounds the rows of one insert (PostgreSQL takes at most 65,535
// parameters a statement).
const postMax = 2000

// postAll writes many postings at once, a few statements for all of them:
// the opened grants of each posting are returned in its order.
func (s *Service) postAll(ctx context.Context, c *ent.Client, ps []engine.Posting, now time.Time) ([][]*ent.Grant, error) {
	if err := s.move(ctx, c, ps, now); err != nil { // what leaves first, then what arrives
		return nil, err
	}
	opened, err := s.open(ctx, c, ps, now)
	if err != nil {
		return nil, err
	}
	if err := setPayments(ctx, c, ps); err != nil {
		return nil, err
	}
	var charges []*ent.ChargeCreate
	for i, p := range ps {
		for _, ch := range p.Charges {
			cc := c.Charge.Create().SetOrganizationID(p.Org).SetKind(ch.Kind).SetCredits(ch.Credits).SetAmount(ch.Amount).
				SetCurrency(ch.Currency).SetNillableSubscriptionID(ch.SubscriptionID).SetNillablePeriodStart(ch.PeriodStart).
				SetNillableUsageEventID(ch.UsageEvent).SetNillableGrantID(ch.Grant).SetNillableRefundOf(ch.RefundOf).SetNillableAddOnID(ch.AddOn).
				SetMemo(ch.Memo).SetCreatedAt(now)
			if ch.Opening != nil {
				cc.SetGrantID(opened[i][*ch.Opening].ID)
			}
			charges = append(charges, cc)
		}
	}
	for start := 0; start < len(charges); start += postMax {
		if err := c.Charge.CreateBulk(charges[start:min(start+postMax, len(charges))]...).Exec(ctx); err != nil {
			return nil, err
		}
	}
	return opened, nil
}

func (s *Service) open(ctx context.Context, c *ent.Client, ps []engine.Posting, now time.Time) ([][]*ent.Grant, error) {
	var creates []*ent.GrantCreate
	var kinds []credit.EntryKind
	var orgs []int
	var events []*int
	for _, p := range ps {
		for _, o := range p.Open {
			gc := c.Grant.Create().SetOrganizationID(p.Org).SetPoolID(o.Pool).SetCreditType(o.CreditType).
				SetAmount(o.Amount).SetRemaining(o.Amount).SetUnitPrice(o.UnitPrice).SetEffectiveAt(utc(o.EffectiveAt)).
				SetMemo(o.Memo).SetCreatedAt(now)
			if o.Priority != nil {
				gc.SetPriority(*o.Priority)
			}
			if o.ExpiresAt != nil {
				gc.SetExpiresAt(utc(*o.ExpiresAt))
			}
			if o.PaymentDue != nil { // waits for payment: holds nothing, no opening entry yet
				gc.SetRemaining(decimal.Zero).SetPayment(credit.PaymentPending).SetPaymentDueAt(utc(*o.PaymentDue))
			}
			kind := o.Kind
			if kind == "" {
				kind = credit.EntryGrant
			}
			creates, kinds, orgs, events = append(creates, gc), append(kinds, kind), append(orgs, p.Org), append(events, o.UsageEvent)
		}
	}
	var gs []*ent.Grant
	for start := 0; start < len(creates); start += postMax {
		part, err := c.Grant.CreateBulk(creates[start:min(start+postMax, len(creates))]...).Save(ctx)
		if err != nil {
			return nil, mapEntError(err, "grant", "")
		}
		gs = append(gs, part...)
	}
	entries := make([]*ent.LedgerEntryCreate, 0, len(gs))
	for n, g := range gs {
		if g.Payment == credit.PaymentPending {
			continue
		}
		entries = append(entries, c.LedgerEntry.Create().SetOrganizationID(orgs[n]).SetPoolID(g.PoolID).SetGrantID(g.ID).
			SetKind(kinds[n]).SetAmount(g.Amount).SetNillableUsageEventID(events[n]).SetMemo(g.Memo).SetCreatedAt(now))
	}
	if err := createEntries(ctx, c, entries); err != nil {
		return nil, err
	}
	out := make([][]*ent.Grant, len(ps))
	for i, p := range ps {
		out[i], gs = gs[:len(p.Open)], gs[len(p.Open):]
	}
	return out, nil
}

// setPayments writes the postings' payment status changes, each only
// from PENDING: a grant's payment is decided once.
func setPayments(ctx context.Context, c *ent.Client, ps []engine.Posting) error {
	for _, p := range ps {
		for _, pc := range p.Payments {
			n, err := c.Grant.Update().Where(grant.ID(pc.Grant), grant.PaymentEQ(credit.PaymentPending)).SetPayment(pc.To).Save(ctx)
			if err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("grant %d: payment decided twice", pc.Grant)
			}
		}
	}
	return nil
}

func createEntries(ctx context.Context, c *ent.Client, entries []*ent.LedgerEntryCreate) error {
	for start := 0; start < len(entries); start += postMax {
		if err := c.LedgerEntry.CreateBulk(entries[start:min(start+postMax, len(entries))]...).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) move(ctx context.Context, c *ent.Client, ps []engine.Posting, now time.Time) error {
	delta := map[int]decimal.Decimal{}
	var entries []*ent.LedgerEntryCreate
	for _, p := range ps {
		for _, m := range p.Moves {
			if m.Grant != 0 {
				delta[m.Grant] = delta[m.Grant].Add(m.Amount)
			}
			ec := c.LedgerEntry.Create().SetOrganizationID(p.Org).SetPoolID(m.Pool).
				SetKind(m.Kind).SetAmount(m.Amount).SetNillableUsageEventID(m.UsageEvent).SetMemo(m.Memo).SetCreatedAt(now)
			if m.Grant != 0 {
				ec.SetGrantID(m.Grant)
			}
			entries = append(entries, ec)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	if err := createEntries(ctx, c, entries); err != nil {
		return err
	}
	ids := make([]int, 0, len(delta))
	for id := range delta {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	sort.Ints(ids)
	gs, err := c.Grant.Query().Where(grant.IDIn(ids...)).Select(grant.FieldID, grant.FieldRemaining).All(ctx)
	if err != nil {
		return err
	}
	remaining := make([]engine.Grant, len(gs))
	for i, g := range gs {
		remaining[i] = engine.Grant{ID: g.ID, Remaining: g.Remaining.Add(delta[g.ID])}
	}
	return s.setRemaining(ctx, c, remaining)
}

// setRemaining writes the grants' new remaining amounts: one statement on
// PostgreSQL, one per grant on SQLite.
func (s *Service) setRemaining(ctx context.Context, c *ent.Client, gs []engine.Grant) error {
	if s.postgres() {
		ids, rem := make([]int64, len(gs)), make([]string, len(gs))
		for i, g := range gs {
			ids[i], rem[i] = int64(g.ID), g.Remaining.String()
		}
		_, err := c.ExecContext(ctx, `UPDATE grants SET remaining = v.r FROM unnest($1::bigint[], $2::numeric[]) AS v(id, r) WHERE grants.id = v.id`,
			pq.Array(ids), pq.Array(rem))
		return err
	}
	for _, g := range gs {
		if _, err := c.ExecContext(ctx, `UPDATE grants SET remaining = ? WHERE id = ?`, g.Remaining.String(), g.ID); err != nil {
			return err
		}
	}
	return nil
}

// postEntries posts ps and returns the grants they opened and the entries
// they wrote that match where, oldest first. The caller holds the locks of
// the pools the postings touch, so no one else writes entries on their
// grants meanwhile; where tells this posting's entries from those of
// concurrent postings on other pools.
func (s *Service) postEntries(ctx context.Context, tx *ent.Tx, ps []engine.Posting, now time.Time, where ...predicate.LedgerEntry) ([][]*ent.Grant, []*ent.LedgerEntry, error) {
	last, err := s.lastEntry(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	opened, err := s.postAll(ctx, tx.Client(), ps, now)
	if err != nil {
		return nil, nil, err
	}
	var grants []int
	for i, p := range ps {
		for _, m := range p.Moves {
			if m.Grant != 0 {
				grants = append(grants, m.Grant)
			}
		}
		for _, g := range opened[i] {
			grants = append(grants, g.ID)
		}
	}
	mine := ledgerentry.Or(ledgerentry.GrantIDIn(grants...), ledgerentry.GrantIDIsNil())
	es, err := tx.LedgerEntry.Query().Where(append(where, ledgerentry.IDGT(last), mine)...).Order(ent.Asc(ledgerentry.FieldID)).All(ctx)
	return opened, es, err
}

// lastEntry is the newest ledger entry's id (0: none): what a poster writes
// next has a greater one.
func (s *Service) lastEntry(ctx context.Context, tx *ent.Tx) (int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM ledger_entries")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	last := 0
	if rows.Next() {
		if err := rows.Scan(&last); err != nil {
			return 0, err
		}
	}
	return last, rows.Err()
}
