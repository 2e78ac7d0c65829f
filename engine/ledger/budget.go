package ledger

import (
	"context"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/alert"
	"github.com/creditd/creditd/ent/poolspend"
)

// Pools and budgets. A usage event drawn on a PERSONAL or TEAM pool takes
// its pool's grants first, then its parent's, then the ACCOUNT pool's. A
// budget (setBudget) caps what a pool, with the pools under it, may burn in
// a calendar period (UTC): a hard budget denies the burn (reasonCode
// BUDGET_EXCEEDED) even when parents hold credits; a soft one lets it
// through and raises a BUDGET_EXCEEDED alert, once per pool and period.
// Per-member limits are budgets on PERSONAL pools.

type budgetAlert struct {
	kind        credit.AlertKind // BUDGET_EXCEEDED, RUN_UNCOVERED
	org, pool   int
	item        int
	periodStart time.Time
	message     string
}

// writeBudgets stores the new spend of the budgeted pools (computed under
// their locks) and the alerts the batch raised.
func (s *Service) writeBudgets(ctx context.Context, tx *usageTx, pools map[int]poolInfo, spent map[int]bool, alerts []budgetAlert, out []UsageResult, now time.Time) error {
	for id := range spent {
		b := pools[id].Budget
		err := tx.PoolSpend.Create().SetPoolID(id).SetPeriodStart(b.PeriodStart).SetSpent(b.Spent).
			OnConflict(sql.ConflictColumns(poolspend.FieldPoolID, poolspend.FieldPeriodStart)).
			Update(func(u *ent.PoolSpendUpsert) { u.SetSpent(b.Spent) }).Exec(ctx)
		if err != nil {
			return err
		}
	}
	for _, a := range alerts {
		org, pool, ev := a.org, a.pool, out[a.item].Event.ID
		if _, err := s.fire(ctx, tx.Client, firing{org: &org, pool: &pool, kind: a.kind, periodStart: a.periodStart, message: a.message, event: &ev}, now); err != nil {
			return err
		}
	}
	return nil
}

// SetBudget sets (amount >= 0) a pool's budget per calendar period; hard
// stops spending, soft only alerts.
func (s *Service) SetBudget(ctx context.Context, poolID int, amount decimal.Decimal, period credit.Period, hard bool) (*ent.Pool, error) {
	if amount.IsNegative() {
		return nil, credit.Invalid("amount", "must not be negative, got %s", amount)
	}
	if !period.Valid() {
		return nil, credit.Invalid("period", "%q is not a period", period)
	}
	var out *ent.Pool
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		if err := s.lockRow(ctx, tx, "pools", poolID); err != nil {
			return err
		}
		p, err := tx.Pool.Get(ctx, poolID)
		if err != nil || !auth.From(ctx).Sees(p.OrganizationID) {
			return credit.NotFound("pool", poolID)
		}
		if out, err = tx.Pool.UpdateOne(p).SetBudgetAmount(decimal.NewNullDecimal(amount)).SetBudgetPeriod(period).
			SetBudgetHard(hard).Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "setBudget", "Pool", p.ID, &p.OrganizationID, p, out)
	})
	return out, err
}

// BudgetState is a pool's budget with what it spent this period.
type BudgetState struct {
	Amount      decimal.Decimal
	Period      credit.Period
	Hard        bool
	Spent       decimal.Decimal
	PeriodStart time.Time
}

// Budget returns a pool's budget, nil when it has none.
func (s *Service) Budget(ctx context.Context, p *ent.Pool) (*BudgetState, error) {
	if !p.BudgetAmount.Valid || p.BudgetPeriod == nil || !auth.From(ctx).Sees(p.OrganizationID) {
		return nil, nil
	}
	start := engine.BudgetPeriodStart(*p.BudgetPeriod, s.Now())
	b := &BudgetState{Amount: p.BudgetAmount.Decimal, Period: *p.BudgetPeriod, Hard: p.BudgetHard, Spent: decimal.Zero, PeriodStart: start}
	row, err := s.db.Client.PoolSpend.Query().Where(poolspend.PoolID(p.ID), poolspend.PeriodStart(start)).Only(ctx)
	switch {
	case err == nil:
		b.Spent = row.Spent
	case !ent.IsNotFound(err):
		return nil, err
	}
	return b, nil
}

// Alerts lists an organisation's alerts (all organisations' for a caller
// that is not scoped and names none), newest first; only those not
// acknowledged yet with unacknowledged.
func (s *Service) Alerts(ctx context.Context, org *int, first int, unacknowledged bool) ([]*ent.Alert, error) {
	if first < 1 || first > MaxPage {
		return nil, credit.Invalid("first", "must be between 1 and %d", MaxPage)
	}
	if p := auth.From(ctx); p.Scoped() {
		if org != nil && *org != *p.OrgID {
			return nil, credit.NotFound("organization", *org)
		}
		org = p.OrgID
	}
	q := s.db.Client.Alert.Query()
	if org != nil {
		q.Where(alert.OrganizationID(*org))
	}
	if unacknowledged {
		q.Where(alert.AcknowledgedAtIsNil())
	}
	return q.Order(ent.Desc(alert.FieldID)).Limit(first).All(ctx)
}

// budgetMark is the budgets' state before a decision, to take it back.
type budgetMark struct {
	spent  map[int]decimal.Decimal
	alerts int
}

func (b *batch) mark(sc *scope) budgetMark {
	m := budgetMark{spent: map[int]decimal.Decimal{}, alerts: len(b.alerts)}
	for _, bg := range b.budgets(sc) {
		m.spent[bg.PoolID] = bg.Spent
	}
	return m
}

func (b *batch) undo(m budgetMark) {
	for pid, s := range m.spent {
		b.pools[pid].Budget.Spent = s
	}
	b.alerts = b.alerts[:m.alerts]
}

// SetOverageCap sets the most overage an organisation accepts per billing
// period: credits, money (at the plan's overage price), or both (the lower
// binds); neither removes the cap. Past it, overage is DENIED OVERAGE_CAP;
// an OVERAGE_CAP alert warns at 80%.
func (s *Service) SetOverageCap(ctx context.Context, org int, credits, amount *decimal.Decimal) (*ent.Organization, error) {
	for _, f := range []struct {
		name string
		v    *decimal.Decimal
	}{{"credits", credits}, {"amount", amount}} {
		if f.v != nil && f.v.IsNegative() {
			return nil, credit.Invalid(f.name, "must not be negative, got %s", f.v)
		}
	}
	var out *ent.Organization
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		if err := s.lockRow(ctx, tx, "organizations", org); err != nil {
			return err
		}
		o, err := tx.Organization.Get(ctx, org)
		if ent.IsNotFound(err) || err == nil && !auth.From(ctx).Sees(org) {
			return credit.NotFound("organization", org)
		} else if err != nil {
			return err
		}
		if out, err = tx.Organization.UpdateOne(o).SetOverageCapCredits(nullable(credits)).SetOverageCapAmount(nullable(amount)).Save(ctx); err != nil {
			return err
		}
		return s.audit(ctx, tx, "setOverageCap", "Organization", org, &org, o, out)
	})
	return out, err
}
