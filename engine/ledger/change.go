package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/plan"
	"github.com/creditd/creditd/ent/policyversion"
	"github.com/creditd/creditd/ent/subscription"
	"github.com/creditd/creditd/ent/weight"
	"github.com/creditd/creditd/ent/weightregister"
)

// Change management: a version that changes what existing subscribers pay
// (a register version that re-weights or removes an action, a BURN or
// OVERAGE policy version that replaces one in effect) takes effect no
// sooner than the longest notice period (Plan.noticeDays, default 30) of
// the plans those subscribers are on, unless an OPERATOR forces it (the
// audit entry says so). Subscribers whose register version is pinned
// (grandfathered) past the effective date are not affected by a register
// change. Adding an action is not a price change.

// PublishOptions are a publish's when and whether it overrides the notice.
type PublishOptions struct {
	EffectiveFrom *time.Time
	Force         bool // OPERATOR only: take effect inside the notice period
}

// noticeKinds are the policy kinds whose new versions change what a
// usage event costs.
var noticeKinds = []credit.PolicyKind{credit.PolicyBurn, credit.PolicyOverage}

// checkNotice refuses an effective time inside the notice period of the
// subscribers a price change affects (register: those on plans of it, not
// pinned past at; "": every subscriber), unless forced by an OPERATOR. It
// reports whether the notice was overridden.
func (s *Service) checkNotice(ctx context.Context, tx *ent.Tx, register, what string, at, now time.Time, force bool) (bool, error) {
	q := tx.Subscription.Query().Where(subscription.Or(subscription.EndsAtIsNil(), subscription.EndsAtGT(now)))
	subs, err := q.All(ctx)
	if err != nil {
		return false, err
	}
	notice, affected := 0, 0
	for _, sub := range subs {
		p, err := s.plan(ctx, tx, sub.PlanID)
		if err != nil {
			return false, err
		}
		if register != "" {
			pinned := sub.RegisterVersion != nil && (sub.GrandfatheredUntil == nil || sub.GrandfatheredUntil.After(at))
			if p.RegisterName != register || pinned {
				continue
			}
		}
		affected++
		notice = max(notice, p.NoticeDays)
	}
	earliest := now.AddDate(0, 0, notice)
	if affected == 0 || !at.Before(earliest.Add(-time.Minute)) {
		return false, nil
	}
	if !force {
		return false, credit.Errorf(credit.CodeNoticePeriod,
			"%s changes what %d subscribers pay: it may take effect on %s at the earliest (%d days' notice), or an OPERATOR may force it",
			what, affected, earliest.Format(time.RFC3339), notice)
	}
	if p := auth.From(ctx); p != nil && p.Role != credit.RoleOperator {
		return false, credit.Errorf(auth.CodeForbidden, "only an OPERATOR may publish inside the notice period")
	}
	return true, nil
}

// registerTerms is a register version's weights as the diff reads them.
func registerTerms(ctx context.Context, c *ent.Client, registerID int) ([]engine.WeightTerms, error) {
	ws, err := c.Weight.Query().Where(weight.RegisterID(registerID)).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]engine.WeightTerms, len(ws))
	for i, w := range ws {
		out[i] = engine.WeightTerms{Action: w.Action, Credits: w.Credits, Expression: w.Expression, Value: w.ValuePerAction, Cost: w.CostPerAction}
	}
	return out, nil
}

// pricePoints are the prices register's actions are sold at: each plan of
// it, and each of their segment prices per credit.
func pricePoints(ctx context.Context, c *ent.Client, register string) ([]engine.PricePoint, error) {
	ps, err := c.Plan.Query().Where(plan.RegisterName(register)).Order(ent.Asc(plan.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	var out []engine.PricePoint
	for _, p := range ps {
		out = append(out, engine.PricePoint{Plan: p.Name, PricePerCredit: p.PricePerCredit})
		for _, sp := range p.SegmentPrices {
			if sp.PricePerCredit != nil {
				out = append(out, engine.PricePoint{Plan: p.Name, Segment: sp.Segment, PricePerCredit: *sp.PricePerCredit})
			}
		}
	}
	return out, nil
}

// RegisterDiff compares two versions of a register: from (nil: the
// version in effect now; none published: nothing) to to (nil: the latest
// version, a draft or not), with the value checks of the new one at every
// price point.
func (s *Service) RegisterDiff(ctx context.Context, name string, from, to *int) (engine.RegisterDiff, *ent.WeightRegister, *ent.WeightRegister, error) {
	c := s.db.Client
	var old, nu *ent.WeightRegister
	var err error
	if from != nil {
		if old, err = c.WeightRegister.Query().Where(weightregister.Name(name), weightregister.Version(*from)).Only(ctx); err != nil {
			return engine.RegisterDiff{}, nil, nil, mapEntError(err, "weight register", fmt.Sprintf("%s version %d", name, *from))
		}
	} else if old, err = inEffect(ctx, c, name, s.Now()); err != nil {
		return engine.RegisterDiff{}, nil, nil, err
	}
	q := c.WeightRegister.Query().Where(weightregister.Name(name))
	if to != nil {
		nu, err = q.Where(weightregister.Version(*to)).Only(ctx)
	} else {
		nu, err = q.Order(ent.Desc(weightregister.FieldVersion)).First(ctx)
	}
	if err != nil {
		return engine.RegisterDiff{}, nil, nil, mapEntError(err, "weight register", name)
	}
	var oldTerms []engine.WeightTerms
	if old != nil {
		if oldTerms, err = registerTerms(ctx, c, old.ID); err != nil {
			return engine.RegisterDiff{}, nil, nil, err
		}
	}
	newTerms, err := registerTerms(ctx, c, nu.ID)
	if err != nil {
		return engine.RegisterDiff{}, nil, nil, err
	}
	points, err := pricePoints(ctx, c, name)
	if err != nil {
		return engine.RegisterDiff{}, nil, nil, err
	}
	return engine.DiffRegisters(oldTerms, newTerms, points), old, nu, nil
}

// inEffect is the published version of register name in effect at t, nil
// when none is.
func inEffect(ctx context.Context, c *ent.Client, name string, t time.Time) (*ent.WeightRegister, error) {
	r, err := c.WeightRegister.Query().Where(weightregister.Name(name), weightregister.StatusEQ(credit.VersionPublished),
		weightregister.EffectiveFromLTE(t)).Order(ent.Desc(weightregister.FieldEffectiveFrom), ent.Desc(weightregister.FieldVersion)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return r, err
}

// policyReplaces reports whether a published version of a notice kind
// (BURN, OVERAGE) of another expression is in effect at at: publishing p
// then changes what usage costs.
func policyReplaces(ctx context.Context, tx *ent.Tx, p *ent.PolicyVersion, at time.Time) (bool, error) {
	notice := false
	for _, k := range noticeKinds {
		notice = notice || p.Kind == k
	}
	if !notice {
		return false, nil
	}
	cur, err := tx.PolicyVersion.Query().Where(policyversion.KindEQ(p.Kind), policyversion.StatusEQ(credit.VersionPublished),
		policyversion.EffectiveFromLTE(at)).Order(ent.Desc(policyversion.FieldEffectiveFrom), ent.Desc(policyversion.FieldVersion)).First(ctx)
	if ent.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return cur.Expression != p.Expression, nil
}

// registerNotice checks the notice period when r, published at at,
// changes the prices of the version in effect then.
func (s *Service) registerNotice(ctx context.Context, tx *ent.Tx, r *ent.WeightRegister, at, now time.Time, force bool) (bool, error) {
	cur, err := inEffect(ctx, tx.Client(), r.Name, at)
	if err != nil || cur == nil {
		return false, err
	}
	old, err := registerTerms(ctx, tx.Client(), cur.ID)
	if err != nil {
		return false, err
	}
	nu, err := registerTerms(ctx, tx.Client(), r.ID)
	if err != nil {
		return false, err
	}
	if !engine.DiffRegisters(old, nu, nil).PriceChange {
		return false, nil
	}
	return s.checkNotice(ctx, tx, r.Name, fmt.Sprintf("register %q version %d re-weights or removes actions of version %d", r.Name, r.Version, cur.Version), at, now, force)
}
