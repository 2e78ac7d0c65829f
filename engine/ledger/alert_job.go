package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/alertrule"
	"github.com/creditd/creditd/ent/organization"
	"github.com/creditd/creditd/ent/pool"
)

// The alert job: EvaluateAlerts checks every enabled alert rule, and the
// ALERT policy in effect, against the pools they watch, and raises what
// holds. It reads each pool's facts once per run (alertFacts), decides in
// the engine (engine.CheckAlert, engine.CheckAlertPolicy) and stores each
// firing in its own transaction with its webhook deliveries (fire). It is
// idempotent and safe with several replicas: a firing is stored once per
// rule, pool and period whoever raises it. A pool's ALERT policy error does
// not stop the others; the first few errors are returned together.

// AlertReport is what one run of the alert job did.
type AlertReport struct {
	Pools, Fired int
}

// watch is what the job checks on one pool.
type watch struct {
	pool  *ent.Pool
	rules []*ent.AlertRule
}

// EvaluateAlerts runs the alert job at now.
func (s *Service) EvaluateAlerts(ctx context.Context, now time.Time) (AlertReport, error) {
	var rep AlertReport
	snap, err := s.catalog.current(ctx)
	if err != nil {
		return rep, err
	}
	policy, err := snap.policyAt(credit.PolicyAlert, now)
	if err != nil {
		return rep, err
	}
	watches, err := s.watches(ctx, policy != nil)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, w := range watches {
		fired, err := s.evaluatePool(ctx, w, policy, now)
		rep.Pools++
		rep.Fired += fired
		if err != nil {
			if credit.CodeOf(err) != credit.CodeRuleRuntime {
				return rep, err
			}
			if len(errs) < 5 {
				errs = append(errs, err)
			}
		}
	}
	return rep, errors.Join(errs...)
}

// watches lists the pools to check with the rules on each: the pools rules
// name, every pool of an organisation whose rule names none, and every pool
// when an ALERT policy is in effect.
func (s *Service) watches(ctx context.Context, everyPool bool) ([]watch, error) {
	rs, err := s.db.Client.AlertRule.Query().Where(alertrule.Enabled(true)).Order(ent.Asc(alertrule.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	q := s.db.Client.Pool.Query().Order(ent.Asc(pool.FieldID))
	if !everyPool {
		orgs := map[int]bool{}
		for _, r := range rs {
			orgs[r.OrganizationID] = true
		}
		q.Where(pool.OrganizationIDIn(sortedKeys(orgs)...))
	}
	pools, err := q.All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]watch, 0, len(pools))
	for _, p := range pools {
		w := watch{pool: p}
		for _, r := range rs {
			if r.OrganizationID == p.OrganizationID && (r.PoolID == nil || *r.PoolID == p.ID) {
				w.rules = append(w.rules, r)
			}
		}
		if len(w.rules) > 0 || everyPool {
			out = append(out, w)
		}
	}
	return out, nil
}

// evaluatePool checks w's rules and the ALERT policy on its pool and
// raises what holds; it returns how many alerts were new.
func (s *Service) evaluatePool(ctx context.Context, w watch, policy *engine.Rule, now time.Time) (int, error) {
	st, err := s.readPool(ctx, w.pool, now, forecastDays(w, policy))
	if err != nil {
		return 0, err
	}
	f := st.facts
	org, p := w.pool.OrganizationID, w.pool.ID
	var firings []firing
	for _, r := range w.rules {
		if fr := engine.CheckAlert(engineAlertRule(r), f); fr != nil {
			id := r.ID
			firings = append(firings, firing{org: &org, pool: &p, kind: r.Kind, condition: "rule:" + strconv.Itoa(r.ID), rule: &id,
				periodStart: fr.PeriodStart, message: fr.Message})
		}
	}
	var policyErr error
	if policy != nil {
		o, err := s.db.Client.Organization.Query().Where(organization.ID(org)).Only(ctx)
		if err != nil {
			return 0, err
		}
		fr, err := engine.CheckAlertPolicy(ctx, policy, f, engine.Org{ID: o.ID, Segment: o.Segment})
		switch {
		case err != nil:
			policyErr = fmt.Errorf("pool %d: %w", p, err)
		case fr != nil:
			firings = append(firings, firing{org: &org, pool: &p, kind: credit.AlertPolicy, condition: "policy:" + policy.Name,
				periodStart: fr.PeriodStart, message: fr.Message})
		}
	}
	fired := 0
	for _, fg := range firings {
		err := s.inTx(ctx, func(tx *ent.Tx) error {
			a, err := s.fire(ctx, tx.Client(), fg, s.Now())
			if a != nil {
				fired++
			}
			return err
		})
		if err != nil {
			return fired, err
		}
	}
	return fired, policyErr
}

// forecastDays is how far the pool's forecast must look for w's
// DEPLETION_PROJECTED rules and the ALERT policy (its depletionDays: 30
// days); 0: no forecast is needed.
func forecastDays(w watch, policy *engine.Rule) int {
	days := 0
	if policy != nil {
		days = 30
	}
	for _, r := range w.rules {
		if r.Kind == credit.AlertDepletionProjected {
			days = max(days, int(r.Threshold.Decimal.IntPart()))
		}
	}
	return days
}

func engineAlertRule(r *ent.AlertRule) engine.AlertRule {
	return engine.AlertRule{ID: r.ID, Kind: r.Kind, Threshold: r.Threshold, Share: r.Share, CreatedAt: r.CreatedAt.UTC()}
}

// usualDays is how many days before today make a pool's usual daily
// burn; a pool younger than minUsualDays has no usual burn yet.
const usualDays, minUsualDays = 28, 7

// usual is the mean daily burn of the last usualDays days of a daily series
// (oldest first), over the days the pool existed: zero for a pool younger
// than minUsualDays days.
func usual(days []decimal.Decimal, existed int) decimal.Decimal {
	n := min(usualDays, existed, len(days))
	if n < minUsualDays {
		return decimal.Zero
	}
	sum := decimal.Zero
	for _, d := range days[len(days)-n:] {
		sum = sum.Add(d)
	}
	return sum.Div(decimal.NewFromInt(int64(n)))
}
