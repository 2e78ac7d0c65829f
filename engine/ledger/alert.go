package ledger

import (
	"context"
	stdsql "database/sql"
	"errors"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/alert"
)

// Alerts. An alert is stored once per pool, kind, condition and period:
// the usage path raises BUDGET_EXCEEDED and RUN_UNCOVERED in its own
// transaction, the alert job (EvaluateAlerts) raises what alert rules and
// ALERT policies watch, the webhook worker WEBHOOK_DISABLED. Whoever
// raises one first stores it; a repeat, from another evaluation or another
// replica, finds the unique index and stores nothing (no storms). A new
// alert queues its webhook deliveries in the same transaction (the outbox),
// so an alert is never stored without them nor sent without being stored.

// firing is an alert to raise.
type firing struct {
	org, pool   *int
	kind        credit.AlertKind
	condition   string // "" (the usage path), "rule:ID", "policy:NAME", "endpoint:ID"
	rule        *int
	periodStart time.Time
	message     string
	event       *int
}

// fire stores f unless it was raised already in its period, and queues its
// deliveries; it returns the new alert, nil when it was raised before.
func (s *Service) fire(ctx context.Context, c *ent.Client, f firing, now time.Time) (*ent.Alert, error) {
	if f.pool != nil { // raised before: the common case of a condition that holds, read without writing
		seen, err := c.Alert.Query().Where(alert.PoolID(*f.pool), alert.Kind(string(f.kind)), alert.Condition(f.condition),
			alert.PeriodStart(utc(f.periodStart))).Exist(ctx)
		if err != nil || seen {
			return nil, err
		}
	}
	id, err := c.Alert.Create().SetNillableOrganizationID(f.org).SetNillablePoolID(f.pool).SetKind(string(f.kind)).
		SetCondition(f.condition).SetNillableRuleID(f.rule).SetPeriodStart(utc(f.periodStart)).SetMessage(truncate(f.message, 1000)).
		SetNillableUsageEventID(f.event).SetCreatedAt(now).
		OnConflict(sql.ConflictColumns(alert.FieldPoolID, alert.FieldKind, alert.FieldCondition, alert.FieldPeriodStart)).DoNothing().ID(ctx)
	if errors.Is(err, stdsql.ErrNoRows) || ent.IsNotFound(err) { // DoNothing on a conflict returns no row
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a, err := c.Alert.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	eventID, data := alertEvent(a)
	return a, s.enqueue(ctx, c, a.OrganizationID, EventAlertFired, eventID, data, now)
}
