package ledger

import (
	"context"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/hold"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/ent/pool"
	"github.com/creditd/creditd/ent/predicate"
	"github.com/creditd/creditd/ent/usageevent"
)

// OrganizationInput creates an organisation.
type OrganizationInput struct {
	Name         string
	Segment      string
	RegisterName string // "" means "default"
}

// Validate checks the input.
func (in OrganizationInput) Validate() error {
	if in.Name == "" || len(in.Name) > 200 {
		return credit.Invalid("name", "must be 1 to 200 characters")
	}
	if len(in.Segment) > 100 {
		return credit.Invalid("segment", "must be at most 100 characters")
	}
	if in.RegisterName != "" {
		if err := validName("registerName", in.RegisterName); err != nil {
			return err
		}
	}
	return nil
}

// CreateOrganization creates an organisation.
func (s *Service) CreateOrganization(ctx context.Context, in OrganizationInput) (*ent.Organization, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out *ent.Organization
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		c := tx.Organization.Create().SetName(in.Name).SetCreatedAt(s.Now())
		if in.Segment != "" {
			c.SetSegment(in.Segment)
		}
		if in.RegisterName != "" {
			c.SetRegisterName(in.RegisterName)
		}
		var err error
		if out, err = c.Save(ctx); err != nil {
			return mapEntError(err, "organization", "")
		}
		return s.audit(ctx, tx, "createOrganization", "Organization", out.ID, &out.ID, nil, out)
	})
	return out, err
}

// PoolInput creates a pool.
type PoolInput struct {
	OrganizationID int
	Kind           credit.PoolKind
	Name           string
	ParentID       *int
	// NoFallThrough keeps usage on the pool to its own grants (by default
	// it draws on its parents' once its own are spent).
	NoFallThrough bool
}

// CreatePool creates a pool. A TEAM pool's parent is an ACCOUNT pool, a
// PERSONAL pool's parent a TEAM or ACCOUNT pool, all in one organisation; an
// ACCOUNT pool has no parent.
func (s *Service) CreatePool(ctx context.Context, in PoolInput) (*ent.Pool, error) {
	if in.Name == "" || len(in.Name) > 200 {
		return nil, credit.Invalid("name", "must be 1 to 200 characters")
	}
	var out *ent.Pool
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		if _, err := tx.Organization.Get(ctx, in.OrganizationID); err != nil || !auth.From(ctx).Sees(in.OrganizationID) {
			return credit.NotFound("organization", in.OrganizationID)
		}
		c := tx.Pool.Create().SetOrganizationID(in.OrganizationID).SetKind(in.Kind).SetName(in.Name).
			SetFallThrough(!in.NoFallThrough).SetCreatedAt(s.Now())
		switch {
		case in.Kind == credit.PoolAccount && in.ParentID != nil:
			return credit.Invalid("parentId", "an ACCOUNT pool has no parent")
		case in.Kind != credit.PoolAccount && in.ParentID == nil:
			return credit.Invalid("parentId", "a %s pool needs a parent pool", in.Kind)
		case in.ParentID != nil:
			parent, err := tx.Pool.Get(ctx, *in.ParentID)
			if err != nil || parent.OrganizationID != in.OrganizationID {
				return credit.NotFound("pool", *in.ParentID)
			}
			if parent.Kind == credit.PoolPersonal || (in.Kind == credit.PoolTeam && parent.Kind != credit.PoolAccount) {
				return credit.Invalid("parentId", "a %s pool cannot have a %s parent", in.Kind, parent.Kind)
			}
			c.SetParentID(parent.ID)
		}
		if in.Kind == credit.PoolPersonal {
			if err := s.memberLimit(ctx, tx, c, in.OrganizationID); err != nil {
				return err
			}
		}
		var err error
		if out, err = c.Save(ctx); err != nil {
			return mapEntError(err, "pool", "")
		}
		return s.audit(ctx, tx, "createPool", "Pool", out.ID, &out.OrganizationID, nil, out)
	})
	return out, err
}

// memberLimit gives a new PERSONAL pool its plan's member limit as a hard
// budget per plan period, when the organisation's plan has one.
func (s *Service) memberLimit(ctx context.Context, tx *ent.Tx, c *ent.PoolCreate, org int) error {
	sub, err := currentSubscription(ctx, tx.Client(), org, s.Now())
	if err != nil || sub == nil {
		return err
	}
	p, err := s.plan(ctx, tx, sub.PlanID)
	if err != nil || !p.MemberLimit.Valid {
		return err
	}
	c.SetBudgetAmount(p.MemberLimit).SetBudgetPeriod(p.Period).SetBudgetHard(true)
	return nil
}

// GrantInput adds credits to a pool.
type GrantInput struct {
	PoolID      int
	CreditType  credit.CreditType
	Priority    *int
	Amount      decimal.Decimal
	UnitPrice   *decimal.Decimal
	EffectiveAt *time.Time
	ExpiresAt   *time.Time
	Memo        string
	// IdempotencyKey, when set, makes a retry return the first grant (see keyed).
	IdempotencyKey string
	// PendingPayment holds the credits back until ConfirmPayment (see
	// PurchaseInput).
	PendingPayment bool
}

// Validate checks the input against now.
func (in GrantInput) Validate(now time.Time) error {
	if err := checkKey(in.IdempotencyKey); err != nil {
		return err
	}
	if !in.Amount.IsPositive() {
		return credit.Invalid("amount", "must be greater than zero, got %s", in.Amount)
	}
	if in.UnitPrice != nil && in.UnitPrice.IsNegative() {
		return credit.Invalid("unitPrice", "must not be negative, got %s", in.UnitPrice)
	}
	if in.Priority != nil && (*in.Priority < 0 || *in.Priority > 1_000_000) {
		return credit.Invalid("priority", "must be between 0 and 1000000")
	}
	eff := now
	if in.EffectiveAt != nil {
		eff = *in.EffectiveAt
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(eff) {
		return credit.Invalid("expiresAt", "must be after effectiveAt")
	}
	if len(in.Memo) > 500 {
		return credit.Invalid("memo", "must be at most 500 characters")
	}
	return nil
}

// GrantCredits creates a grant and its GRANT ledger entry in one transaction.
func (s *Service) GrantCredits(ctx context.Context, in GrantInput) (*ent.Grant, error) {
	now := s.Now()
	if err := in.Validate(now); err != nil {
		return nil, err
	}
	var out *ent.Grant
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		p, err := tx.Pool.Get(ctx, in.PoolID)
		if err != nil || !auth.From(ctx).Sees(p.OrganizationID) {
			return credit.NotFound("pool", in.PoolID)
		}
		o := engine.Opening{Pool: p.ID, CreditType: in.CreditType, Amount: in.Amount, UnitPrice: decimal.Zero,
			Priority: in.Priority, EffectiveAt: now, ExpiresAt: in.ExpiresAt, Memo: in.Memo,
			PaymentDue: s.paymentDue(in.PendingPayment, now)}
		if in.UnitPrice != nil {
			o.UnitPrice = *in.UnitPrice
		}
		if in.EffectiveAt != nil {
			o.EffectiveAt = *in.EffectiveAt
		}
		ids, replay, err := s.keyed(ctx, tx, p.OrganizationID, in.IdempotencyKey, "grantCredits", in, func() ([]int, error) {
			gs, err := s.post(ctx, tx.Client(), engine.Posting{Org: p.OrganizationID, Open: []engine.Opening{o}}, now)
			if err != nil {
				return nil, err
			}
			out = gs[0]
			return []int{out.ID}, s.audit(ctx, tx, "grantCredits", "Grant", out.ID, &out.OrganizationID, nil, out)
		})
		if err == nil && replay {
			out, err = tx.Grant.Get(ctx, ids[0])
		}
		return err
	})
	return out, err
}

// Balance is what a pool holds now.
type Balance struct {
	Available decimal.Decimal
	Reserved  decimal.Decimal
	Overage   decimal.Decimal
	Pending   decimal.Decimal // credits of grants waiting for payment: not available, never drawn
	ByType    []TypeBalance
}

// TypeBalance is the available credits of one credit type.
type TypeBalance struct {
	CreditType credit.CreditType
	Available  decimal.Decimal
}

// Balance sums the pool's usable grants at now, in total and by credit type
// (types in the default draw order, only those the pool holds).
func (s *Service) Balance(ctx context.Context, p *ent.Pool) (Balance, error) {
	if !auth.From(ctx).Sees(p.OrganizationID) {
		return Balance{}, credit.NotFound("pool", p.ID)
	}
	now := s.Now()
	gs, err := s.db.Client.Grant.Query().Where(grant.PoolID(p.ID)).All(ctx)
	if err != nil {
		return Balance{}, err
	}
	b := Balance{Available: decimal.Zero, Reserved: decimal.Zero, Overage: decimal.Zero, Pending: decimal.Zero}
	by := map[credit.CreditType]decimal.Decimal{}
	for _, g := range gs {
		if g.Payment == credit.PaymentPending {
			b.Pending = b.Pending.Add(g.Amount)
		}
		if !engineGrant(g).Usable(now) {
			continue
		}
		b.Available = b.Available.Add(g.Remaining)
		by[g.CreditType] = by[g.CreditType].Add(g.Remaining)
	}
	for _, t := range []credit.CreditType{credit.CreditIncentive, credit.CreditPromotional, credit.CreditRollover,
		credit.CreditSubscription, credit.CreditOnDemand, credit.CreditService} {
		if v, ok := by[t]; ok {
			b.ByType = append(b.ByType, TypeBalance{CreditType: t, Available: v})
		}
	}
	// Reserved: credits held by runs not settled yet.
	open, err := s.db.Client.Hold.Query().Where(hold.PoolID(p.ID), hold.Status(holdOpen)).All(ctx)
	if err != nil {
		return Balance{}, err
	}
	for _, h := range open {
		b.Reserved = b.Reserved.Add(h.Amount)
	}
	// Overage: credits used beyond the balance in the current period (since
	// the subscription's period start; all time without a subscription).
	q := s.db.Client.LedgerEntry.Query().Where(ledgerentry.PoolID(p.ID), ledgerentry.KindEQ(credit.EntryOverage))
	if sub, err := s.CurrentSubscription(ctx, p.OrganizationID); err != nil {
		return Balance{}, err
	} else if sub != nil {
		pl, err := s.db.Client.Plan.Get(ctx, sub.PlanID)
		if err != nil {
			return Balance{}, err
		}
		sched := schedule(sub, pl)
		start, _ := sched.Bounds(sched.Index(now))
		q.Where(ledgerentry.CreatedAtGTE(start))
	}
	over, err := q.All(ctx)
	if err != nil {
		return Balance{}, err
	}
	for _, e := range over {
		b.Overage = b.Overage.Sub(e.Amount)
	}
	return b, nil
}

// Grants lists a pool's grants, oldest first; empty, expired or failed
// ones only when includeEmpty (those waiting for payment always).
func (s *Service) Grants(ctx context.Context, p *ent.Pool, includeEmpty bool) ([]*ent.Grant, error) {
	if !auth.From(ctx).Sees(p.OrganizationID) {
		return nil, credit.NotFound("pool", p.ID)
	}
	q := s.db.Client.Grant.Query().Where(grant.PoolID(p.ID)).Order(ent.Asc(grant.FieldID))
	gs, err := q.All(ctx)
	if err != nil || includeEmpty {
		return gs, err
	}
	now := s.Now()
	out := gs[:0]
	for _, g := range gs {
		if engineGrant(g).Usable(now) || g.Payment == credit.PaymentPending ||
			g.EffectiveAt.After(now) && g.Remaining.IsPositive() {
			out = append(out, g)
		}
	}
	return out, nil
}

// PoolsOf lists an organisation's pools, oldest first.
func (s *Service) PoolsOf(ctx context.Context, orgID int) ([]*ent.Pool, error) {
	if !auth.From(ctx).Sees(orgID) {
		return nil, credit.NotFound("organization", orgID)
	}
	return s.db.Client.Pool.Query().Where(pool.OrganizationID(orgID)).Order(ent.Asc(pool.FieldID)).All(ctx)
}

// MaxPage is the largest page of a ledger query.
const MaxPage = 500

// LedgerPage is one page of a pool's ledger, newest entry first.
type LedgerPage struct {
	Entries     []*ent.LedgerEntry
	HasNextPage bool
}

// LedgerFilter narrows a ledger; zero fields match everything.
type LedgerFilter struct {
	Kinds         []credit.EntryKind
	GrantID       *int
	Action, RunID *string // of the entry's usage event
	Status        *credit.UsageStatus
	From, To      *time.Time // created at or after From, before To
}

// where is the filter as predicates.
func (f LedgerFilter) where() []predicate.LedgerEntry {
	var out []predicate.LedgerEntry
	if len(f.Kinds) > 0 {
		out = append(out, ledgerentry.KindIn(f.Kinds...))
	}
	if f.GrantID != nil {
		out = append(out, ledgerentry.GrantID(*f.GrantID))
	}
	if f.From != nil {
		out = append(out, ledgerentry.CreatedAtGTE(*f.From))
	}
	if f.To != nil {
		out = append(out, ledgerentry.CreatedAtLT(*f.To))
	}
	var ev []predicate.UsageEvent
	if f.Action != nil {
		ev = append(ev, usageevent.Action(*f.Action))
	}
	if f.RunID != nil {
		ev = append(ev, usageevent.RunID(*f.RunID))
	}
	if f.Status != nil {
		ev = append(ev, usageevent.StatusEQ(*f.Status))
	}
	if len(ev) > 0 {
		out = append(out, ledgerentry.HasUsageEventWith(ev...))
	}
	return out
}

// Ledger returns up to first entries of the pool that match f, older than
// the entry whose id is after (0: from the newest).
func (s *Service) Ledger(ctx context.Context, poolID, first, after int, f LedgerFilter) (LedgerPage, error) {
	if first < 1 || first > MaxPage {
		return LedgerPage{}, credit.Invalid("first", "must be between 1 and %d", MaxPage)
	}
	if p, err := s.Pool(ctx, poolID); err != nil || p == nil {
		return LedgerPage{}, errOr(err, credit.NotFound("pool", poolID))
	}
	q := s.db.Client.LedgerEntry.Query().Where(ledgerentry.PoolID(poolID)).Where(f.where()...)
	if after > 0 {
		q.Where(ledgerentry.IDLT(after))
	}
	es, err := q.Order(ent.Desc(ledgerentry.FieldID)).Limit(first + 1).All(ctx)
	if err != nil {
		return LedgerPage{}, err
	}
	page := LedgerPage{Entries: es}
	if len(es) > first {
		page.Entries, page.HasNextPage = es[:first], true
	}
	return page, nil
}

func errOr(err error, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

func validName(field, name string) error {
	if name == "" || len(name) > 100 {
		return credit.Invalid(field, "must be 1 to 100 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return credit.Invalid(field, "%s may hold letters, digits, '-', '_' and '.' only", strconv.Quote(name))
		}
	}
	return nil
}
