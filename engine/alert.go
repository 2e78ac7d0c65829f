package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/rules"
)

// Alert rules: conditions a buyer's admin watches on a pool, checked by the
// alert job against what it read of the pool (AlertFacts). Each kind fires
// at most once per alert period: the pool's billing period (the UTC month
// without a subscription), the UTC day for BURN_RATE_ABOVE, the budget
// period for BUDGET_REACHED. The ledger stores a firing once per rule, pool
// and period; the engine only says whether the condition holds.

// AlertRule is an alert rule as the engine sees it.
type AlertRule struct {
	ID        int
	Kind      credit.AlertKind
	Threshold decimal.NullDecimal
	Share     bool // BALANCE_BELOW: the threshold is a share of the period's allowance
	CreatedAt time.Time
}

// AlertFacts is what the alert job read of one pool at Now.
type AlertFacts struct {
	Now, PeriodStart time.Time
	PoolKind         credit.PoolKind
	Available        decimal.Decimal
	Allowance        decimal.Decimal // the period's included credits; 0: none
	BurnToday        decimal.Decimal // credits used since the UTC day began
	BurnUsual        decimal.Decimal // mean credits used per day over the 28 days before today
	Expiring         []Expiry        // usable credits with an expiry
	DepletesAt       *time.Time      // the predictor's projected run-out, if any
	Budget           *BudgetFacts
	Uncovered        []time.Time // UNCOVERED entries of the period
	TopUpsDenied     []time.Time // usage denied for want of credits under AUTO_TOP_UP, in the period
}

// Expiry is credits that expire at At.
type Expiry struct {
	At      time.Time
	Credits decimal.Decimal
}

// BudgetFacts is a pool's budget and what its period spent.
type BudgetFacts struct {
	Amount, Spent decimal.Decimal
	PeriodStart   time.Time
}

// Firing is a condition that holds: the alert period it fires in and why.
type Firing struct {
	PeriodStart time.Time
	Message     string
}

const maxAlertDays = 366

// Validate checks what each kind needs of the threshold.
func (r AlertRule) Validate() error {
	t, has := r.Threshold.Decimal, r.Threshold.Valid
	if has && t.IsNegative() {
		return credit.Invalid("threshold", "must not be negative, got %s", t)
	}
	switch r.Kind {
	case credit.AlertBalanceBelow:
		if !has {
			return credit.Invalid("threshold", "BALANCE_BELOW needs a threshold: credits, or a share of the period allowance with share: true")
		}
		if r.Share && t.GreaterThan(decimal.NewFromInt(1)) {
			return credit.Invalid("threshold", "a share is between 0 and 1, got %s", t)
		}
	case credit.AlertExpiringWithin, credit.AlertDepletionProjected:
		if !has || !t.IsInteger() || t.LessThan(decimal.NewFromInt(1)) || t.GreaterThan(decimal.NewFromInt(maxAlertDays)) {
			return credit.Invalid("threshold", "%s needs a whole number of days from 1 to %d", r.Kind, maxAlertDays)
		}
	case credit.AlertBurnRateAbove:
		if !has || t.LessThan(decimal.NewFromInt(1)) || t.GreaterThan(decimal.NewFromInt(1000)) {
			return credit.Invalid("threshold", "BURN_RATE_ABOVE needs a factor of the usual daily burn from 1 to 1000")
		}
	case credit.AlertBudgetReached:
		if has && (!t.IsPositive() || t.GreaterThan(decimal.NewFromInt(1))) {
			return credit.Invalid("threshold", "BUDGET_REACHED takes a share of the budget above 0 and at most 1 (default 1)")
		}
	case credit.AlertTopUpDenied, credit.AlertRunUncovered:
		if has {
			return credit.Invalid("threshold", "%s takes no threshold", r.Kind)
		}
	default:
		return credit.Invalid("kind", "%s is not a kind of alert rule", r.Kind)
	}
	if r.Share && r.Kind != credit.AlertBalanceBelow {
		return credit.Invalid("share", "only BALANCE_BELOW takes a share")
	}
	return nil
}

// CheckAlert reports whether rule r's condition holds on facts f: nil when
// it does not.
func CheckAlert(r AlertRule, f AlertFacts) *Firing {
	t := r.Threshold.Decimal
	at := func(format string, args ...any) *Firing {
		return &Firing{PeriodStart: f.PeriodStart, Message: fmt.Sprintf(format, args...)}
	}
	switch r.Kind {
	case credit.AlertBalanceBelow:
		limit := t
		if r.Share {
			if !f.Allowance.IsPositive() {
				return nil
			}
			limit = t.Mul(f.Allowance)
		}
		if f.Available.LessThan(limit) {
			return at("balance %s is below %s", f.Available, limit)
		}
	case credit.AlertExpiringWithin:
		return expiring(f, int(t.IntPart()), at)
	case credit.AlertBurnRateAbove:
		if f.BurnUsual.IsPositive() && f.BurnToday.GreaterThan(t.Mul(f.BurnUsual)) {
			day := time.Date(f.Now.Year(), f.Now.Month(), f.Now.Day(), 0, 0, 0, 0, time.UTC)
			return &Firing{PeriodStart: day, Message: fmt.Sprintf("%s credits used today, above %s x the usual %s a day", f.BurnToday, t, f.BurnUsual.Round(2))}
		}
	case credit.AlertBudgetReached:
		return budgetReached(r, f)
	case credit.AlertDepletionProjected:
		if f.DepletesAt != nil && !f.DepletesAt.After(f.Now.AddDate(0, 0, int(t.IntPart()))) {
			return at("credits are projected to run out on %s, within %s days", f.DepletesAt.UTC().Format(time.DateOnly), t)
		}
	case credit.AlertRunUncovered:
		if n := since(f.Uncovered, f.PeriodStart, r.CreatedAt); n > 0 {
			return at("%d run(s) settled beyond what covered them this period", n)
		}
	case credit.AlertTopUpDenied:
		if n := since(f.TopUpsDenied, f.PeriodStart, r.CreatedAt); n > 0 {
			return at("%d usage event(s) denied: the auto top-up could not buy the credits", n)
		}
	}
	return nil
}

func expiring(f AlertFacts, days int, at func(string, ...any) *Firing) *Firing {
	if sum := expiringSum(f, days); sum.IsPositive() {
		return at("%s credits expire within %d days", sum, days)
	}
	return nil
}

func budgetReached(r AlertRule, f AlertFacts) *Firing {
	share := decimal.NewFromInt(1)
	if r.Threshold.Valid {
		share = r.Threshold.Decimal
	}
	if f.Budget == nil || !f.Budget.Amount.IsPositive() || f.Budget.Spent.LessThan(share.Mul(f.Budget.Amount)) {
		return nil
	}
	return &Firing{PeriodStart: f.Budget.PeriodStart, Message: fmt.Sprintf("%s of the budget of %s spent (%s%% reached)",
		f.Budget.Spent, f.Budget.Amount, share.Mul(decimal.NewFromInt(100)))}
}

// since counts the times at or after both from and created.
func since(ts []time.Time, from, created time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(from) && !t.Before(created) {
			n++
		}
	}
	return n
}

// CheckAlertPolicy evaluates a published ALERT policy on facts f: true
// fires it, once per period. A rule error is RULE_RUNTIME.
func CheckAlertPolicy(ctx context.Context, rule *Rule, f AlertFacts, org Org) (*Firing, error) {
	v := rules.Vars{Org: ruleOrg(org), Now: f.Now, Available: f.Available, Alert: &rules.AlertVars{
		Allowance: f.Allowance, BurnToday: f.BurnToday, BurnUsual: f.BurnUsual, PoolKind: string(f.PoolKind),
		ExpiringSoon: expiringSum(f, 7), DepletionDays: depletionDays(f), BudgetSpent: decimal.Zero, BudgetAmount: decimal.Zero}}
	if f.Budget != nil {
		v.Alert.BudgetSpent, v.Alert.BudgetAmount = f.Budget.Spent, f.Budget.Amount
	}
	ok, err := rule.Program.Bool(ctx, v)
	if err != nil {
		return nil, ruleRuntime(fmt.Sprintf("ALERT policy %q v%d", rule.Name, rule.Version), err)
	}
	if !ok {
		return nil, nil
	}
	return &Firing{PeriodStart: f.PeriodStart, Message: fmt.Sprintf("ALERT policy %q v%d matched", rule.Name, rule.Version)}, nil
}

// expiringSum is the credits expiring after Now and within days.
func expiringSum(f AlertFacts, days int) decimal.Decimal {
	until, sum := f.Now.AddDate(0, 0, days), decimal.Zero
	for _, e := range f.Expiring {
		if e.At.After(f.Now) && !e.At.After(until) {
			sum = sum.Add(e.Credits)
		}
	}
	return sum
}

// depletionDays is the days until the projected run-out, -1 when none is
// projected.
func depletionDays(f AlertFacts) decimal.Decimal {
	if f.DepletesAt == nil {
		return decimal.NewFromInt(-1)
	}
	return decimal.NewFromInt(int64(f.DepletesAt.Sub(f.Now))).Div(decimal.NewFromInt(int64(24 * time.Hour))).Round(2)
}
