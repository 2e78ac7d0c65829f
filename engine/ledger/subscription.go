package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/pool"
	"github.com/creditd/creditd/ent/subscription"
	"github.com/creditd/creditd/ent/weightregister"
)

// PurchaseInput buys on-demand credits into a pool.
type PurchaseInput struct {
	PoolID         int
	Credits        decimal.Decimal
	IdempotencyKey string // when set, a retry returns the first purchase and buys nothing
	// PendingPayment bills the purchase now and holds its credits back
	// until ConfirmPayment (FailPayment, or the payment window, cancels it).
	PendingPayment bool
}

// SubscribeInput subscribes an organisation to a plan.
type SubscribeInput struct {
	OrganizationID  int
	PlanID          int
	StartsAt        time.Time
	Commitment      *decimal.Decimal // committed spend over the term; default 0
	TermPeriods     *int             // length of the term in periods; nil: open-ended
	AutoRenew       *bool            // default true: the term renews
	TimeZone        string           // IANA zone the periods are anchored in; default UTC
	RegisterVersion *int             // pin the plan's register version (grandfathering)
	// GrandfatheredUntil ends the pin: usage occurring from then on is
	// priced by the version in effect (nil: pinned for good).
	GrandfatheredUntil *time.Time
	Backfill           bool // allow a start more than one period in the past
}

// MaxPeriodsPerRun bounds the periods one subscription opens in one run
// of the period close (or before one usage batch): a backfilled
// subscription catches up over several runs, and never holds a runner for
// long while other subscriptions wait.
const MaxPeriodsPerRun = 50

// schedule is a subscription's period calendar.
func schedule(sub *ent.Subscription, p *ent.Plan) engine.Schedule {
	loc, err := time.LoadLocation(sub.TimeZone)
	if err != nil {
		loc = time.UTC // validated at subscribe time
	}
	return engine.Schedule{Start: sub.StartsAt, Period: p.Period, Location: loc}
}

// Subscribe creates a subscription; its included credits arrive in the
// organisation's default (first ACCOUNT) pool at the start of each period,
// the first one at once when the subscription has started. An organisation
// has one subscription at a time: overlapping ones are refused.
func (s *Service) Subscribe(ctx context.Context, in SubscribeInput) (*ent.Subscription, error) {
	if in.TimeZone == "" {
		in.TimeZone = "UTC"
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if !auth.From(ctx).Sees(in.OrganizationID) {
		return nil, credit.NotFound("organization", in.OrganizationID)
	}
	start := utc(in.StartsAt)
	now := s.Now()
	var out *ent.Subscription
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		// Lock the organisation so two subscribes cannot both pass the overlap check.
		if err := s.lockRow(ctx, tx, "organizations", in.OrganizationID); err != nil {
			return err
		}
		if _, err := tx.Organization.Get(ctx, in.OrganizationID); err != nil {
			return mapEntError(err, "organization", in.OrganizationID)
		}
		p, err := tx.Plan.Get(ctx, in.PlanID)
		if err != nil {
			return mapEntError(err, "plan", in.PlanID)
		}
		if err := pinnedRegister(ctx, tx, p.RegisterName, in.RegisterVersion); err != nil {
			return err
		}
		pools, err := tx.Pool.Query().Where(pool.OrganizationID(in.OrganizationID), pool.KindEQ(credit.PoolAccount)).
			Order(ent.Asc(pool.FieldID)).All(ctx)
		if err != nil {
			return err
		}
		if len(pools) == 0 {
			return credit.Invalid("organizationId", "the organisation has no ACCOUNT pool to receive its credits; create one first")
		}
		sub := &ent.Subscription{StartsAt: start, TimeZone: in.TimeZone}
		sched := schedule(sub, p)
		if sched.Index(now) >= 1 && !in.Backfill {
			return credit.Invalid("startsAt", "%s is more than one %s in the past: its periods since would open and bill at once; pass backfill: true to mean it",
				start.Format(time.RFC3339), strings.ToLower(string(p.Period)))
		}
		autoRenew := in.AutoRenew == nil || *in.AutoRenew
		var ends *time.Time
		if in.TermPeriods != nil && !autoRenew {
			e := sched.Boundary(*in.TermPeriods)
			ends = &e
		}
		if err := noOverlap(ctx, tx, in.OrganizationID, start, ends); err != nil {
			return err
		}
		commitment := decimal.Zero
		if in.Commitment != nil {
			commitment = *in.Commitment
		}
		out, err = tx.Subscription.Create().SetOrganizationID(in.OrganizationID).SetPlanID(p.ID).SetPoolID(pools[0].ID).
			SetStartsAt(start).SetNillableEndsAt(ends).SetNillableTermPeriods(in.TermPeriods).SetAutoRenew(autoRenew).
			SetTimeZone(in.TimeZone).SetCommitment(commitment).SetNillableRegisterVersion(in.RegisterVersion).
			SetNillableGrandfatheredUntil(in.GrandfatheredUntil).
			SetNextPeriod(0).SetNextPeriodAt(start).SetCreatedAt(now).Save(ctx)
		if err != nil {
			return mapEntError(err, "subscription", "")
		}
		if err := s.audit(ctx, tx, "subscribe", "Subscription", out.ID, &out.OrganizationID, nil, out); err != nil {
			return err
		}
		if err := s.seed(ctx, tx, out, p, maxTime(start, now), now); err != nil {
			return err
		}
		if !start.After(now) {
			if _, _, err := s.openPeriod(ctx, tx, out, p, p.ID, now); err != nil {
				return err
			}
			out, err = tx.Subscription.Get(ctx, out.ID)
		}
		return err
	})
	return out, err
}

// seed grants a new subscription its plan's seed credits (PROMOTIONAL,
// no expiry): once, not every period.
func (s *Service) seed(ctx context.Context, tx *ent.Tx, sub *ent.Subscription, p *ent.Plan, at, now time.Time) error {
	if !p.SeedCredits.Valid || !p.SeedCredits.Decimal.IsPositive() {
		return nil
	}
	o := engine.Opening{Pool: sub.PoolID, CreditType: credit.CreditPromotional, Amount: p.SeedCredits.Decimal, UnitPrice: decimal.Zero,
		EffectiveAt: at, Memo: fmt.Sprintf("seed credits of plan %s", p.Name)}
	_, err := s.post(ctx, tx.Client(), engine.Posting{Org: sub.OrganizationID, Open: []engine.Opening{o}}, now)
	return err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Validate checks what can be checked without the database.
func (in SubscribeInput) Validate() error {
	switch {
	case in.StartsAt.IsZero():
		return credit.Invalid("startsAt", "is required")
	case in.Commitment != nil && in.Commitment.IsNegative():
		return credit.Invalid("commitment", "must not be negative")
	case in.TermPeriods != nil && (*in.TermPeriods < 1 || *in.TermPeriods > 1200):
		return credit.Invalid("termPeriods", "must be 1 to 1200")
	case in.GrandfatheredUntil != nil && in.RegisterVersion == nil:
		return credit.Invalid("grandfatheredUntil", "ends a pin: set registerVersion too")
	case in.GrandfatheredUntil != nil && !in.GrandfatheredUntil.After(in.StartsAt):
		return credit.Invalid("grandfatheredUntil", "must be after startsAt")
	}
	if _, err := time.LoadLocation(in.TimeZone); err != nil {
		return credit.Invalid("timeZone", "%q is not an IANA time zone", in.TimeZone)
	}
	return nil
}

// pinnedRegister checks that a pinned register version is published.
func pinnedRegister(ctx context.Context, tx *ent.Tx, name string, version *int) error {
	if version == nil {
		return nil
	}
	ok, err := tx.WeightRegister.Query().Where(weightregister.Name(name), weightregister.Version(*version),
		weightregister.StatusEQ(credit.VersionPublished)).Exist(ctx)
	if err != nil || ok {
		return err
	}
	return credit.NotFound("published weight register", fmt.Sprintf("%s version %d", name, *version))
}

// noOverlap refuses a subscription over a time the organisation already
// has one (but the subscriptions except: one whose end moves).
func noOverlap(ctx context.Context, tx *ent.Tx, org int, start time.Time, ends *time.Time, except ...int) error {
	others, err := tx.Subscription.Query().Where(subscription.OrganizationID(org), subscription.IDNotIn(except...)).All(ctx)
	if err != nil {
		return err
	}
	for _, o := range others {
		if overlaps(o.StartsAt, o.EndsAt, start, ends) {
			return credit.Errorf(credit.CodeSubscriptionOverlap, "organization %d already has subscription %d over that time", org, o.ID)
		}
	}
	return nil
}

func overlaps(aStart time.Time, aEnd *time.Time, bStart time.Time, bEnd *time.Time) bool {
	endsBefore := func(end *time.Time, start time.Time) bool { return end != nil && !end.After(start) }
	return !endsBefore(aEnd, bStart) && !endsBefore(bEnd, aStart)
}

// lockRow takes a row lock on PostgreSQL (SQLite's single connection already
// serialises writers).
func (s *Service) lockRow(ctx context.Context, tx *ent.Tx, table string, id int) error {
	if !s.postgres() {
		return nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT id FROM "+table+" WHERE id = $1 FOR UPDATE", id)
	if err != nil {
		return err
	}
	return rows.Close()
}

// PeriodReport sums what period closes did.
type PeriodReport struct {
	SubscriptionsClosed int
	Expired             decimal.Decimal
	RolledOver          decimal.Decimal
	Allocated           decimal.Decimal
}

func (r *PeriodReport) add(o PeriodReport) {
	r.SubscriptionsClosed += o.SubscriptionsClosed
	r.Expired = r.Expired.Add(o.Expired)
	r.RolledOver = r.RolledOver.Add(o.RolledOver)
	r.Allocated = r.Allocated.Add(o.Allocated)
}

// errPeriodTaken means another runner opened the period first.
var errPeriodTaken = errors.New("period already opened")

// openPeriod opens the subscription's next period, in tx: it closes the
// period before (expires and rolls over the credits ending at the boundary,
// by the plan's rollover mode), allocates the new period's included credits
// as a SUBSCRIPTION grant and records the platform fee, unless the term has
// ended. A unique (subscription, period) row makes it happen once.
func (s *Service) openPeriod(ctx context.Context, tx *ent.Tx, sub *ent.Subscription, p *ent.Plan, closing int, now time.Time) (PeriodReport, *time.Time, error) {
	sched := schedule(sub, p)
	n := sub.NextPeriod
	start, end := sched.Bounds(n)
	if err := s.lockRow(ctx, tx, "pools", sub.PoolID); err != nil {
		return PeriodReport{}, nil, err
	}
	rep := PeriodReport{SubscriptionsClosed: 1, Expired: decimal.Zero, RolledOver: decimal.Zero, Allocated: decimal.Zero}
	running := sub.EndsAt == nil || start.Before(*sub.EndsAt)

	// Close the period before (every grant of the pool ending at the
	// boundary), roll over, allocate, bill: decided by the engine, posted.
	gs, err := tx.Grant.Query().Where(grant.PoolID(sub.PoolID), grant.ExpiresAtLTE(start), grant.RemainingNEQ(decimal.Zero)).All(ctx)
	if err != nil {
		return rep, nil, err
	}
	ending := make([]engine.Grant, 0, len(gs))
	for _, g := range gs {
		ending = append(ending, engineGrant(g))
	}
	attached, err := s.attachedTo(ctx, tx, []int{sub.ID})
	if err != nil {
		return rep, nil, err
	}
	o, err := s.decidePeriod(ctx, tx, sub, closing, ending, attached[sub.ID])
	if err != nil {
		return rep, nil, err
	}
	if _, err := s.post(ctx, tx.Client(), o.opening.Posting, now); err != nil {
		return rep, nil, err
	}
	rep.Expired, rep.RolledOver, rep.Allocated = o.opening.Close.Expired, o.opening.Close.Rolled, o.opening.Allocated
	if err := tx.SubscriptionPeriod.Create().SetSubscriptionID(sub.ID).SetPeriodIndex(n).SetStartsAt(start).SetEndsAt(end).
		SetExpired(rep.Expired).SetRolledOver(rep.RolledOver).SetAllocated(rep.Allocated).SetCreatedAt(now).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return rep, nil, errPeriodTaken
		}
		return rep, nil, err
	}
	upd := tx.Subscription.Update().Where(subscription.ID(sub.ID)).SetNextPeriod(n + 1)
	var next *time.Time
	if running {
		upd.SetNextPeriodAt(end)
		next = &end
	} else {
		upd.ClearNextPeriodAt()
	}
	return rep, next, upd.Exec(ctx)
}

// closeSubscription opens the subscription's periods started by asOf.
func (s *Service) closeSubscription(ctx context.Context, id int, asOf, now time.Time) (PeriodReport, error) {
	rep := PeriodReport{Expired: decimal.Zero, RolledOver: decimal.Zero, Allocated: decimal.Zero}
	periods := 0
	for counted := false; ; {
		var (
			done   PeriodReport
			next   *time.Time
			opened bool
		)
		err := s.inTx(ctx, func(tx *ent.Tx) error {
			opened = false
			if err := s.lockRow(ctx, tx, "subscriptions", id); err != nil {
				return err
			}
			sub, err := tx.Subscription.Get(ctx, id)
			if err != nil {
				return err
			}
			if sub.NextPeriodAt == nil || sub.NextPeriodAt.After(asOf) {
				return nil // done, here or by another runner
			}
			closing := sub.PlanID
			if sub, err = s.applyScheduled(ctx, tx, sub); err != nil { // a plan change at the period end
				return err
			}
			p, err := s.plan(ctx, tx, sub.PlanID)
			if err != nil {
				return err
			}
			done, next, err = s.openPeriod(ctx, tx, sub, p, closing, now)
			opened = err == nil
			return err
		})
		if errors.Is(err, errPeriodTaken) {
			continue // another runner opened it: look again
		}
		if err != nil || !opened {
			return rep, err
		}
		if counted {
			done.SubscriptionsClosed = 0
		}
		counted = true
		rep.add(done)
		if periods++; next == nil || next.After(asOf) || periods >= MaxPeriodsPerRun {
			return rep, nil // the rest, if any, in the next run
		}
	}
}

// plan returns a plan, cached: plans never change.
func (s *Service) plan(ctx context.Context, tx *ent.Tx, id int) (*ent.Plan, error) {
	return s.planOf(ctx, tx.Client(), id)
}

// planOf is plan, read through c.
func (s *Service) planOf(ctx context.Context, c *ent.Client, id int) (*ent.Plan, error) {
	return cached(&s.plans, id, func() (*ent.Plan, error) { return c.Plan.Get(ctx, id) })
}

// cached is m's row of id, else get's, kept when found: for rows that
// never change (plans, add-ons).
func cached[T any](m *sync.Map, id int, get func() (*T, error)) (*T, error) {
	if v, ok := m.Load(id); ok {
		return v.(*T), nil
	}
	v, err := get()
	if err == nil {
		m.Store(id, v)
	}
	return v, err
}

// CurrentSubscription is the organisation's subscription in effect now.
func (s *Service) CurrentSubscription(ctx context.Context, orgID int) (*ent.Subscription, error) {
	if !auth.From(ctx).Sees(orgID) {
		return nil, nil
	}
	return currentSubscription(ctx, s.db.Client, orgID, s.Now())
}

// currentSubscription is the organisation's subscription in effect at now,
// read through c (inside a transaction, the transaction's client: SQLite has
// one connection).
func currentSubscription(ctx context.Context, c *ent.Client, orgID int, now time.Time) (*ent.Subscription, error) {
	return none(c.Subscription.Query().Where(subscription.OrganizationID(orgID), subscription.StartsAtLTE(now),
		subscription.Or(subscription.EndsAtIsNil(), subscription.EndsAtGT(now))).
		Order(ent.Desc(subscription.FieldStartsAt)).First(ctx))
}

// PurchaseCredits buys on-demand credits for a pool at its organisation's
// plan's on-demand price: an ON_DEMAND grant (with the plan's on-demand
// expiry, if any) and an ON_DEMAND charge, in one transaction.
func (s *Service) PurchaseCredits(ctx context.Context, in PurchaseInput) (*ent.Grant, error) {
	poolID, credits := in.PoolID, in.Credits
	if !credits.IsPositive() {
		return nil, credit.Invalid("credits", "must be greater than zero, got %s", credits)
	}
	if err := checkKey(in.IdempotencyKey); err != nil {
		return nil, err
	}
	pool, err := s.Pool(ctx, poolID)
	if err != nil || pool == nil {
		return nil, errOr(err, credit.NotFound("pool", poolID))
	}
	sub, err := s.CurrentSubscription(ctx, pool.OrganizationID)
	if err != nil {
		return nil, err
	}
	if sub == nil {
		return nil, credit.Errorf(credit.CodeNoOnDemandPrice, "organization %d has no subscription, so no on-demand price", pool.OrganizationID)
	}
	p, err := s.db.Client.Plan.Get(ctx, sub.PlanID)
	if err != nil {
		return nil, err
	}
	prices, err := orgPrices(ctx, s.db.Client, p, pool.OrganizationID)
	if err != nil {
		return nil, err
	}
	if !prices.OnDemand.Valid {
		return nil, credit.Errorf(credit.CodeNoOnDemandPrice, "plan %q sells no on-demand credits", p.Name)
	}
	now := s.Now()
	var expires *time.Time
	if p.OnDemandExpiryDays != nil {
		e := now.AddDate(0, 0, *p.OnDemandExpiryDays)
		expires = &e
	}
	var out *ent.Grant
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		// Under tiers, the subscription's own pool is locked too: every
		// on-demand credit of the subscription (auto top-ups buy into that
		// pool) then counts its tier position one at a time.
		locks := []int{pool.ID}
		if len(p.OnDemandTiers) > 0 && sub.PoolID != pool.ID {
			locks = append(locks, sub.PoolID)
			slices.Sort(locks)
		}
		for _, id := range locks {
			if err := s.lockRow(ctx, tx, "pools", id); err != nil {
				return err
			}
		}
		ids, replay, err := s.keyed(ctx, tx, pool.OrganizationID, in.IdempotencyKey, "purchaseCredits", in, func() ([]int, error) {
			amount := credits.Mul(prices.OnDemand.Decimal)
			if len(p.OnDemandTiers) > 0 {
				sched := schedule(sub, p)
				bought, err := onDemandBought(ctx, tx.Client(), sub.ID, sched.Boundary(sched.Index(now)))
				if err != nil {
					return nil, err
				}
				amount = engine.Graduated(p.OnDemandTiers, prices.OnDemand.Decimal, bought, credits)
			}
			price := unitPrice(amount, credits)
			subID, first := sub.ID, 0
			gs, err := s.post(ctx, tx.Client(), engine.Posting{Org: pool.OrganizationID,
				Open: []engine.Opening{{Pool: pool.ID, CreditType: credit.CreditOnDemand, Amount: credits, UnitPrice: price,
					EffectiveAt: now, ExpiresAt: expires, PaymentDue: s.paymentDue(in.PendingPayment, now), Memo: "on-demand purchase"}},
				Charges: []engine.Charge{{Kind: "ON_DEMAND", Credits: credits, Amount: amount, Currency: p.Currency,
					SubscriptionID: &subID, Opening: &first, Memo: fmt.Sprintf("%s credits at %s", credits, price)}}}, now)
			if err != nil {
				return nil, err
			}
			out = gs[0]
			return []int{out.ID}, s.audit(ctx, tx, "purchaseCredits", "Grant", out.ID, &pool.OrganizationID, nil, out)
		})
		if err == nil && replay {
			out, err = tx.Grant.Get(ctx, ids[0])
		}
		return err
	})
	return out, err
}

// ChargePage is one page of charges, newest first.
type ChargePage struct {
	Charges     []*ent.Charge
	HasNextPage bool
}

// Charges lists an organisation's charges (all organisations' when org is
// nil and the caller is not scoped), newest first.
func (s *Service) Charges(ctx context.Context, org *int, first, after int) (ChargePage, error) {
	if first < 1 || first > MaxPage {
		return ChargePage{}, credit.Invalid("first", "must be between 1 and %d", MaxPage)
	}
	if p := auth.From(ctx); p.Scoped() {
		if org != nil && *org != *p.OrgID {
			return ChargePage{}, credit.NotFound("organization", *org)
		}
		org = p.OrgID
	}
	q := s.db.Client.Charge.Query()
	if org != nil {
		q.Where(charge.OrganizationID(*org))
	}
	if after > 0 {
		q.Where(charge.IDLT(after))
	}
	cs, err := q.Order(ent.Desc(charge.FieldID)).Limit(first + 1).All(ctx)
	if err != nil {
		return ChargePage{}, err
	}
	page := ChargePage{Charges: cs}
	if len(cs) > first {
		page.Charges, page.HasNextPage = cs[:first], true
	}
	return page, nil
}
