package ledger

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/grant"
	"github.com/creditd/creditd/ent/incentiveaward"
	entpool "github.com/creditd/creditd/ent/pool"
)

// Incentives. The INCENTIVE policy in effect is evaluated on every usage
// event (trigger "usage") and on named behaviour events (trigger
// "behavior", recordBehavior); what it returns is granted as INCENTIVE
// credits to the member's pool, within the plan's caps per period (for the
// organisation) and per member (pool), expiring after the plan's incentive
// expiry. A behaviour pays once per member. Organisations without a
// subscription get no incentives: caps and expiry are plan terms.

// award evaluates the incentive rule for an event and grants what the caps
// allow, in the caller's transaction. behavior names what is paid for (a
// behaviour's name, or "usage:<idempotency key>"). It returns nil when
// nothing is paid.
func (s *Service) award(ctx context.Context, c *ent.Client, rule *engine.Rule, ts *termsState, org engine.Org, pool int,
	ev engine.Event, trigger, behavior string, now time.Time) (*ent.Grant, error) {
	if rule == nil || ts == nil {
		return nil, nil
	}
	credits, err := engine.IncentiveOf(ctx, rule, ev, org, trigger, now)
	if err != nil {
		return nil, err
	}
	if !credits.IsPositive() {
		return nil, nil
	}
	p := ts.plan
	capped := func(limit decimal.NullDecimal, q *ent.IncentiveAwardQuery) error {
		if !limit.Valid {
			return nil
		}
		as, err := q.Where(incentiveaward.PeriodStart(ts.start)).All(ctx)
		if err != nil {
			return err
		}
		paid := decimal.Zero
		for _, a := range as {
			paid = paid.Add(a.Credits)
		}
		credits = decimal.Min(credits, decimal.Max(limit.Decimal.Sub(paid), decimal.Zero))
		return nil
	}
	if err := capped(p.IncentiveCapPerPeriod, c.IncentiveAward.Query().Where(incentiveaward.OrganizationID(org.ID))); err != nil {
		return nil, err
	}
	if err := capped(p.IncentiveCapPerMember, c.IncentiveAward.Query().Where(incentiveaward.PoolID(pool))); err != nil {
		return nil, err
	}
	if !credits.IsPositive() {
		return nil, nil
	}
	memo := "incentive: " + behavior
	expires := now.AddDate(0, 0, p.IncentiveExpiryDays)
	gs, err := s.post(ctx, c, engine.Posting{Org: org.ID, Open: []engine.Opening{{Pool: pool, CreditType: credit.CreditIncentive,
		Amount: credits, UnitPrice: decimal.Zero, EffectiveAt: now, ExpiresAt: &expires, Memo: truncate(memo, 500)}}}, now)
	if err != nil {
		return nil, err
	}
	g := gs[0]
	if err := c.IncentiveAward.Create().SetOrganizationID(org.ID).SetPoolID(pool).SetBehavior(behavior).SetGrantID(g.ID).
		SetPolicyID(rule.ID).SetPolicyVersion(rule.Version).SetCredits(credits).SetPeriodStart(ts.start).SetCreatedAt(now).Exec(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// BehaviorInput is a named behaviour of a member (e.g. onboarding.first_run,
// referral.accepted).
type BehaviorInput struct {
	OrganizationID int
	PoolID         *int // the member's pool; default: the organisation's default pool
	Name           string
	Properties     map[string]any
}

// BehaviorResult is what a behaviour earned: the incentive grant, if any.
type BehaviorResult struct {
	Incentive *ent.Grant
	Duplicate bool // the member was already paid for this behaviour
}

// RecordBehavior evaluates the INCENTIVE policy for a behaviour and pays
// what it grants, once per member: a second call for the same member and
// behaviour returns the first payment with Duplicate set.
func (s *Service) RecordBehavior(ctx context.Context, in BehaviorInput) (BehaviorResult, error) {
	if in.Name == "" || len(in.Name) > engine.MaxActionLen {
		return BehaviorResult{}, credit.Invalid("name", "must be 1 to %d characters", engine.MaxActionLen)
	}
	if !auth.From(ctx).Sees(in.OrganizationID) {
		return BehaviorResult{}, credit.NotFound("organization", in.OrganizationID)
	}
	now := s.Now()
	snap, err := s.catalog.current(ctx)
	if err != nil {
		return BehaviorResult{}, err
	}
	var out BehaviorResult
	err = s.inTx(ctx, func(tx *ent.Tx) error {
		o, err := tx.Organization.Get(ctx, in.OrganizationID)
		if err != nil {
			return mapEntError(err, "organization", in.OrganizationID)
		}
		var pool *ent.Pool
		if in.PoolID != nil {
			pool, err = tx.Pool.Get(ctx, *in.PoolID)
			if err != nil || pool.OrganizationID != o.ID {
				return credit.NotFound("pool", *in.PoolID)
			}
		} else if pool, err = tx.Pool.Query().Where(entpool.OrganizationID(o.ID), entpool.KindEQ(credit.PoolAccount)).
			Order(ent.Asc(entpool.FieldID)).First(ctx); err != nil {
			return credit.NotFound("pool of organization", o.ID)
		}
		if err := s.lockRow(ctx, tx, "pools", pool.ID); err != nil {
			return err
		}
		prev, err := tx.IncentiveAward.Query().Where(incentiveaward.PoolID(pool.ID), incentiveaward.Behavior(in.Name)).Only(ctx)
		if err == nil {
			g, err := tx.Grant.Query().Where(grant.ID(prev.GrantID)).Only(ctx)
			out = BehaviorResult{Incentive: g, Duplicate: true}
			return err
		}
		if !ent.IsNotFound(err) {
			return err
		}
		sub, err := currentSubscription(ctx, tx.Client(), o.ID, now)
		if err != nil || sub == nil {
			return err
		}
		p, err := tx.Plan.Get(ctx, sub.PlanID)
		if err != nil {
			return err
		}
		sched := schedule(sub, p)
		ts := &termsState{sub: sub, plan: p, start: sched.Boundary(sched.Index(now)), ready: true}
		if snap, err = s.catalog.fresh(ctx, tx.Client(), snap); err != nil {
			return err
		}
		v, err := snap.versions(o.RegisterName, nil, now)
		if err != nil {
			return err
		}
		ev := engine.Event{Action: in.Name, Status: credit.StatusSucceeded, Quantity: decimal.NewFromInt(1),
			Completion: decimal.NewFromInt(1), Attempt: 1, Properties: in.Properties, OccurredAt: now}
		g, err := s.award(ctx, tx.Client(), v.Incentive, ts, engine.Org{ID: o.ID, Segment: o.Segment}, pool.ID, ev, "behavior", in.Name, now)
		out = BehaviorResult{Incentive: g}
		return err
	})
	return out, err
}
