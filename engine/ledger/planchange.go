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
	"github.com/creditd/creditd/ent/pool"
	"github.com/creditd/creditd/ent/subscriptionchange"
)

// Plan changes and cancellations (decided by engine.ChangePlanNow): NOW
// posts the prorated credits and fee in one transaction with the
// subscription and its pool locked; PERIOD_END schedules the change, which
// the period close applies before it opens the next period under the new
// plan. Every change is audited and kept in the subscription's history
// (SubscriptionChange). Plans must share currency and billing period.

// When a change or cancellation takes effect.
const (
	AtNow       = "NOW"
	AtPeriodEnd = "PERIOD_END"
	AtTermEnd   = "TERM_END" // the end of the subscription's current term: a renewal onto the plan, or the end
)

func validAt(at string) error {
	if at != AtNow && at != AtPeriodEnd && at != AtTermEnd {
		return credit.Invalid("at", "NOW, PERIOD_END or TERM_END, got %q", at)
	}
	return nil
}

// termEndOf is the end of sub's current term (the start of the next), for
// a change or cancellation at TERM_END: NO_TERM without a term.
func termEndOf(sub *ent.Subscription, p *ent.Plan, now time.Time) (time.Time, error) {
	if sub.TermPeriods == nil {
		return time.Time{}, credit.Errorf(credit.CodeNoTerm, "subscription %d has no term (termPeriods): change or cancel it at NOW or PERIOD_END", sub.ID)
	}
	sched, t := schedule(sub, p), *sub.TermPeriods
	return sched.Boundary((sched.Index(now)/t + 1) * t), nil
}

// PlanChangeInput changes a subscription's plan.
type PlanChangeInput struct {
	SubscriptionID, PlanID int
	At                     string // NOW or PERIOD_END
}

// PlanChangePreview is what a change would post: the decision, for NOW,
// or its effective time, for PERIOD_END.
type PlanChangePreview struct {
	engine.PlanChange
	At          string
	EffectiveAt time.Time
	From, To    *ent.Plan
}

// PreviewPlanChange decides a plan change without writing anything.
func (s *Service) PreviewPlanChange(ctx context.Context, in PlanChangeInput) (PlanChangePreview, error) {
	var out PlanChangePreview
	err := s.inTx(ctx, func(tx *ent.Tx) error { // reads and locks only: nothing is written
		var err error
		out, _, err = s.decideChange(ctx, tx, in)
		return err
	})
	return out, err
}

// ChangePlan changes a subscription's plan now (prorated) or at the
// period end, and returns the history entry.
func (s *Service) ChangePlan(ctx context.Context, in PlanChangeInput) (*ent.SubscriptionChange, error) {
	if err := s.openDueOf(ctx, in.SubscriptionID); err != nil {
		return nil, err
	}
	var out *ent.SubscriptionChange
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		pv, sub, err := s.decideChange(ctx, tx, in)
		if err != nil {
			return err
		}
		now, status := s.Now(), "SCHEDULED"
		u := tx.Subscription.UpdateOne(sub)
		replaced := []string{AtNow, AtPeriodEnd}
		switch in.At {
		case AtTermEnd:
			// A renewal onto the plan: the subscription renews at its term
			// end (even one that was to end there) and moves to the plan.
			if sub.EndsAt != nil {
				if err := noOverlap(ctx, tx, sub.OrganizationID, sub.StartsAt, nil, sub.ID); err != nil {
					return err
				}
			}
			u.SetRenewalPlanID(pv.To.ID).SetAutoRenew(true).ClearEndsAt()
			replaced = []string{AtTermEnd}
		case AtNow:
			if _, err := s.post(ctx, tx.Client(), pv.Posting, now); err != nil {
				return err
			}
			if err := moveMemberLimits(ctx, tx, sub.OrganizationID, pv.From, pv.To); err != nil {
				return err
			}
			status = "APPLIED"
			u.SetPlanID(pv.To.ID).ClearPendingPlanID()
		default:
			u.SetPendingPlanID(pv.To.ID)
		}
		if err := s.endScheduled(ctx, tx, sub.ID, "REPLACED", replaced...); err != nil {
			return err
		}
		if err := u.Exec(ctx); err != nil {
			return err
		}
		c := tx.SubscriptionChange.Create().SetSubscriptionID(sub.ID).SetOrganizationID(sub.OrganizationID).SetKind(pv.Kind).SetAt(in.At).
			SetFromPlanID(pv.From.ID).SetToPlanID(pv.To.ID).SetEffectiveAt(pv.EffectiveAt).SetStatus(status).
			SetCredits(pv.Credits).SetFee(pv.Fee).SetActor(actorName(ctx)).SetCreatedAt(now)
		if in.At == AtNow {
			c.SetFraction(decimal.NewNullDecimal(pv.Fraction))
		}
		if out, err = c.Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "changePlan", "Subscription", sub.ID, &sub.OrganizationID, sub, out)
	})
	return out, err
}

// decideChange reads the subscription (locked) and both plans, checks the
// change, and decides it.
func (s *Service) decideChange(ctx context.Context, tx *ent.Tx, in PlanChangeInput) (PlanChangePreview, *ent.Subscription, error) {
	if err := validAt(in.At); err != nil {
		return PlanChangePreview{}, nil, err
	}
	sub, start, end, err := s.activeSubscription(ctx, tx, in.SubscriptionID)
	if err != nil {
		return PlanChangePreview{}, nil, err
	}
	from, err := s.plan(ctx, tx, sub.PlanID)
	if err != nil {
		return PlanChangePreview{}, nil, err
	}
	to, err := s.plan(ctx, tx, in.PlanID)
	if ent.IsNotFound(err) {
		return PlanChangePreview{}, nil, credit.NotFound("plan", in.PlanID)
	} else if err != nil {
		return PlanChangePreview{}, nil, err
	}
	pv := PlanChangePreview{At: in.At, EffectiveAt: end, From: from, To: to}
	if in.At == AtTermEnd {
		if pv.EffectiveAt, err = termEndOf(sub, from, s.Now()); err != nil {
			return pv, nil, err
		}
	}
	renew := in.At == AtTermEnd && from.ID == to.ID && sub.EndsAt != nil // renew a term that was to end, on its plan
	if err := engine.ValidatePlanChange(changeTerms(from), changeTerms(to)); err != nil && !renew {
		return pv, nil, err
	}
	if in.At != AtNow {
		pv.PlanChange = engine.PlanChange{Posting: engine.Posting{Org: sub.OrganizationID}, Kind: engine.ChangeKind(changeTerms(from), changeTerms(to)),
			Fraction: decimal.Zero, Credits: decimal.Zero, Fee: decimal.Zero}
		if renew {
			pv.Kind = "RENEWAL"
		}
		return pv, sub, nil
	}
	if err := s.lockRow(ctx, tx, "pools", sub.PoolID); err != nil {
		return pv, nil, err
	}
	gs, err := tx.Grant.Query().Where(grant.PoolID(sub.PoolID), grant.CreditTypeEQ(credit.CreditSubscription), grant.ExpiresAt(end)).All(ctx)
	if err != nil {
		return pv, nil, err
	}
	included := make([]engine.Grant, len(gs))
	for i, g := range gs {
		included[i] = engineGrant(g)
	}
	pv.EffectiveAt = s.Now()
	pv.PlanChange, err = engine.ChangePlanNow(engine.PlanChangeRequest{Org: sub.OrganizationID, Pool: sub.PoolID, SubscriptionID: sub.ID,
		From: changeTerms(from), To: changeTerms(to), PeriodStart: start, PeriodEnd: end, Now: pv.EffectiveAt, Included: included})
	return pv, sub, err
}

// activeSubscription locks and reads a subscription the caller sees that
// has not been cancelled or ended, with its current period.
func (s *Service) activeSubscription(ctx context.Context, tx *ent.Tx, id int) (*ent.Subscription, time.Time, time.Time, error) {
	var zero time.Time
	if err := s.lockRow(ctx, tx, "subscriptions", id); err != nil {
		return nil, zero, zero, err
	}
	sub, err := tx.Subscription.Get(ctx, id)
	if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(sub.OrganizationID) {
		return nil, zero, zero, credit.NotFound("subscription", id)
	} else if err != nil {
		return nil, zero, zero, err
	}
	now := s.Now()
	switch {
	case sub.CanceledAt != nil:
		return nil, zero, zero, credit.Errorf(credit.CodeSubscriptionEnded, "subscription %d was cancelled on %s", id, sub.CanceledAt.UTC().Format(time.RFC3339))
	case sub.EndsAt != nil && !sub.EndsAt.After(now):
		return nil, zero, zero, credit.Errorf(credit.CodeSubscriptionEnded, "subscription %d ended on %s", id, sub.EndsAt.UTC().Format(time.RFC3339))
	case sub.StartsAt.After(now):
		return nil, zero, zero, credit.Errorf(credit.CodeConflict, "subscription %d starts on %s: change it once it has started", id, sub.StartsAt.UTC().Format(time.RFC3339))
	}
	p, err := s.plan(ctx, tx, sub.PlanID)
	if err != nil {
		return nil, zero, zero, err
	}
	sched := schedule(sub, p)
	start, end := sched.Bounds(sched.Index(now))
	return sub, start, end, nil
}

func changeTerms(p *ent.Plan) engine.ChangePlanTerms {
	return engine.ChangePlanTerms{ID: p.ID, Name: p.Name, Period: p.Period, Currency: p.Currency, IncludedCredits: p.IncludedCredits,
		PricePerCredit: p.PricePerCredit, PlatformFee: p.PlatformFee, ChangeCredits: p.ChangeCredits}
}

// openDueOf opens the subscription's due periods first, so that a change
// prorates the period that is current.
func (s *Service) openDueOf(ctx context.Context, id int) error {
	sub, err := s.db.Client.Subscription.Get(ctx, id)
	if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(sub.OrganizationID) {
		return credit.NotFound("subscription", id)
	} else if err != nil {
		return err
	}
	_, err = s.closeSubscription(ctx, id, s.Now(), s.Now())
	return err
}

// endScheduled marks the subscription's scheduled changes status (they are
// replaced, cancelled or applied): those at one of ats, or all without.
func (s *Service) endScheduled(ctx context.Context, tx *ent.Tx, sub int, status string, ats ...string) error {
	u := tx.SubscriptionChange.Update().Where(subscriptionchange.SubscriptionID(sub), subscriptionchange.Status("SCHEDULED"))
	if len(ats) > 0 {
		u.Where(subscriptionchange.AtIn(ats...))
	}
	return u.SetStatus(status).Exec(ctx)
}

// applyScheduled applies a subscription's change scheduled for the period
// end, in the period close's transaction, before the next period opens;
// it returns the subscription as it is then.
//
// At a term end a renewal onto another plan (changePlan at TERM_END)
// applies, and a change for the same period end is REPLACED by it.
func (s *Service) applyScheduled(ctx context.Context, tx *ent.Tx, sub *ent.Subscription) (*ent.Subscription, error) {
	n := sub.NextPeriod
	termEnd := sub.TermPeriods != nil && n > 0 && n%*sub.TermPeriods == 0 && sub.RenewalPlanID != nil
	if sub.PendingPlanID == nil && !termEnd {
		return sub, nil
	}
	to := sub.PendingPlanID
	if termEnd {
		to = sub.RenewalPlanID
		if err := s.endScheduled(ctx, tx, sub.ID, "REPLACED", AtPeriodEnd); err != nil {
			return nil, err
		}
		if err := s.endScheduled(ctx, tx, sub.ID, "APPLIED", AtTermEnd); err != nil {
			return nil, err
		}
	} else if err := s.endScheduled(ctx, tx, sub.ID, "APPLIED", AtPeriodEnd); err != nil {
		return nil, err
	}
	u := tx.Subscription.UpdateOne(sub).ClearPendingPlanID()
	if termEnd {
		u.ClearRenewalPlanID()
	}
	if *to == sub.PlanID {
		return u.Save(ctx) // a renewal onto the plan it is on
	}
	from, err := tx.Plan.Get(ctx, sub.PlanID)
	if err != nil {
		return nil, err
	}
	next, err := tx.Plan.Get(ctx, *to)
	if err != nil {
		return nil, err
	}
	if err := moveMemberLimits(ctx, tx, sub.OrganizationID, from, next); err != nil {
		return nil, err
	}
	return u.SetPlanID(*to).Save(ctx)
}

// moveMemberLimits moves the members' (PERSONAL pools') budgets that are
// still the old plan's member limit to the new plan's, so limits grow as
// the organisation upgrades; budgets an admin set otherwise stay.
func moveMemberLimits(ctx context.Context, tx *ent.Tx, org int, from, to *ent.Plan) error {
	if !from.MemberLimit.Valid {
		if !to.MemberLimit.Valid {
			return nil
		}
		return tx.Pool.Update().Where(pool.OrganizationID(org), pool.KindEQ(credit.PoolPersonal), pool.BudgetAmountIsNil()).
			SetBudgetAmount(to.MemberLimit).SetBudgetPeriod(to.Period).SetBudgetHard(true).Exec(ctx)
	}
	u := tx.Pool.Update().Where(pool.OrganizationID(org), pool.KindEQ(credit.PoolPersonal), pool.BudgetPeriodEQ(from.Period),
		pool.BudgetHard(true), pool.BudgetAmountEQ(from.MemberLimit))
	if to.MemberLimit.Valid {
		return u.SetBudgetAmount(to.MemberLimit).Exec(ctx)
	}
	return u.ClearBudgetAmount().ClearBudgetPeriod().SetBudgetHard(false).Exec(ctx)
}

// CancelInput cancels a subscription now or at the period end.
type CancelInput struct {
	SubscriptionID int
	At             string
}

// CancelSubscription ends a subscription: NOW ends it at once (no more
// periods, fees or plan terms: overage, top-ups; the credits already
// granted stay usable until they expire, no fee is refunded), PERIOD_END
// at the end of the current period. A scheduled plan change is cancelled.
func (s *Service) CancelSubscription(ctx context.Context, in CancelInput) (*ent.SubscriptionChange, error) {
	if err := validAt(in.At); err != nil {
		return nil, err
	}
	if err := s.openDueOf(ctx, in.SubscriptionID); err != nil {
		return nil, err
	}
	var out *ent.SubscriptionChange
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		sub, _, end, err := s.activeSubscription(ctx, tx, in.SubscriptionID)
		if err != nil {
			return err
		}
		now := s.Now()
		switch in.At {
		case AtNow:
			end = now
		case AtTermEnd:
			p, err := s.plan(ctx, tx, sub.PlanID)
			if err != nil {
				return err
			}
			if end, err = termEndOf(sub, p, now); err != nil {
				return err
			}
		}
		if err := s.endScheduled(ctx, tx, sub.ID, "CANCELED"); err != nil {
			return err
		}
		if err := tx.Subscription.UpdateOne(sub).SetCanceledAt(now).SetEndsAt(end).SetAutoRenew(false).ClearPendingPlanID().
			ClearRenewalPlanID().Exec(ctx); err != nil {
			return err
		}
		if out, err = tx.SubscriptionChange.Create().SetSubscriptionID(sub.ID).SetOrganizationID(sub.OrganizationID).SetKind("CANCEL").
			SetAt(in.At).SetFromPlanID(sub.PlanID).SetEffectiveAt(end).SetStatus("APPLIED").SetCredits(decimal.Zero).SetFee(decimal.Zero).
			SetActor(actorName(ctx)).SetCreatedAt(now).Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "cancelSubscription", "Subscription", sub.ID, &sub.OrganizationID, sub, out)
	})
	return out, err
}

// SubscriptionChanges is a subscription's history, oldest first.
func (s *Service) SubscriptionChanges(ctx context.Context, sub *ent.Subscription) ([]*ent.SubscriptionChange, error) {
	if !auth.From(ctx).Sees(sub.OrganizationID) {
		return nil, nil
	}
	return s.db.Client.SubscriptionChange.Query().Where(subscriptionchange.SubscriptionID(sub.ID)).
		Order(ent.Asc(subscriptionchange.FieldID)).All(ctx)
}
