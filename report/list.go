package report

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/store"
)

// MaxPage is the largest page a listing returns.
const MaxPage = 500

// EntryFilter selects an organisation's ledger entries, for Entries and
// ExportLedgerCSV. Action, RunID and Status are the entry's usage event's
// (an entry that names no event never matches them); From and To bound
// created_at, [From, To).
type EntryFilter struct {
	OrganizationID int
	PoolID         *int
	Kinds          []string // credit.EntryKind values; none: every kind
	GrantID        *int
	Action         *string
	RunID          *string
	Status         *string // a credit.UsageStatus
	From, To       *time.Time
}

// EntryRow is a ledger entry with what its usage event tells.
type EntryRow struct {
	ID           int
	CreatedAt    time.Time // UTC
	Kind         credit.EntryKind
	PoolID       int
	GrantID      *int
	Amount       decimal.Decimal // signed: positive adds credits
	UsageEventID *int
	// Action, RunID and Status are the usage event's; "" when the entry
	// names none.
	Action                                                string
	RunID                                                 string
	Status                                                credit.UsageStatus
	RegisterVersion, BurnPolicyVersion, DrawPolicyVersion *int
	Memo                                                  string
}

// EventFilter selects an organisation's usage events, for Events and
// ExportUsageCSV; From and To bound created_at (when the event was
// recorded), [From, To).
type EventFilter struct {
	OrganizationID int
	PoolID         *int
	Action         *string
	RunID          *string
	Status         *string // a credit.UsageStatus
	From, To       *time.Time
}

// EventRow is a usage event with the engine's decision (its properties
// are left out).
type EventRow struct {
	ID                                                    int
	CreatedAt, OccurredAt                                 time.Time // UTC
	PoolID                                                int
	IdempotencyKey, Action, RunID                         string
	Status                                                credit.UsageStatus
	Quantity, Completion                                  decimal.Decimal
	Attempt                                               int
	Credits, Overage                                      decimal.Decimal
	Decision                                              credit.Decision
	ReasonCode, Reason                                    string
	RegisterVersion, BurnPolicyVersion, DrawPolicyVersion *int
}

// cursor is keyset pagination by id: rows after the id (below it when
// newest first; 0: from the start), at most limit of them.
type cursor struct {
	after, limit int
	newest       bool
}

func (c cursor) add(q *query, col string) {
	switch {
	case c.after > 0 && c.newest:
		q.and(col, " < ", q.arg(c.after))
	case c.after > 0:
		q.and(col, " > ", q.arg(c.after))
	}
	dir := " ASC"
	if c.newest {
		dir = " DESC"
	}
	q.add(" ORDER BY ", col, dir, " LIMIT ", strconv.Itoa(c.limit))
}

// Entries is a page of the entries f selects, newest (highest id) first:
// at most first, below the id afterID (0: from the newest), and whether
// more follow (pass the last row's id as afterID for them).
func Entries(ctx context.Context, db *store.DB, f EntryFilter, first int, afterID int) ([]EntryRow, bool, error) {
	if err := f.Validate(); err != nil {
		return nil, false, err
	}
	if err := checkPage(first, afterID); err != nil {
		return nil, false, err
	}
	out, err := fetch(ctx, db, entrySQL(db.Dialect, f, cursor{after: afterID, limit: first + 1, newest: true}), scanEntry)
	if err != nil {
		return nil, false, fmt.Errorf("ledger entries: %w", err)
	}
	return trim(out, first)
}

// Events is a page of the usage events f selects, newest first, as Entries.
func Events(ctx context.Context, db *store.DB, f EventFilter, first int, afterID int) ([]EventRow, bool, error) {
	if err := f.Validate(); err != nil {
		return nil, false, err
	}
	if err := checkPage(first, afterID); err != nil {
		return nil, false, err
	}
	out, err := fetch(ctx, db, eventSQL(db.Dialect, f, cursor{after: afterID, limit: first + 1, newest: true}), scanEvent)
	if err != nil {
		return nil, false, fmt.Errorf("usage events: %w", err)
	}
	return trim(out, first)
}

func trim[T any](rows []T, first int) ([]T, bool, error) {
	if len(rows) > first {
		return rows[:first], true, nil
	}
	return rows, false, nil
}

// fetch runs q and scans every row (q bounds them with LIMIT). The rows
// are read to the end before the caller does anything slow with them, so
// the connection goes back to the pool at once (SQLite has only one).
func fetch[T any](ctx context.Context, db *store.DB, q *query, scan func(*sql.Rows) (T, error)) ([]T, error) {
	rows, err := db.SQL.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const entryColumns = "le.id, le.created_at, le.kind, le.pool_id, le.grant_id, le.amount, le.usage_event_id, ue.action, ue.run_id, ue.status, " +
	"le.register_version, le.burn_policy_version, le.draw_policy_version, le.memo"

// entrySQL selects the entries of f, with their usage events, by c.
func entrySQL(d string, f EntryFilter, c cursor) *query {
	q := newQuery(d)
	q.add("SELECT ", entryColumns, " FROM ledger_entries le",
		" LEFT JOIN usage_events ue ON ue.id = le.usage_event_id AND ue.organization_id = le.organization_id",
		" WHERE le.organization_id = ", q.arg(f.OrganizationID))
	eq(q, "le.pool_id", f.PoolID)
	eq(q, "le.grant_id", f.GrantID)
	if len(f.Kinds) > 0 {
		q.and("le.kind IN ", list(q, f.Kinds))
	}
	eq(q, "ue.action", f.Action)
	eq(q, "ue.run_id", f.RunID)
	eq(q, "ue.status", f.Status)
	between(q, "le.created_at", f.From, f.To)
	c.add(q, "le.id")
	return q
}

const eventColumns = "ue.id, ue.created_at, ue.occurred_at, ue.pool_id, ue.idempotency_key, ue.action, ue.run_id, ue.status, " +
	"ue.quantity, ue.completion, ue.attempt, ue.credits, ue.overage, ue.decision, ue.reason_code, ue.reason, " +
	"ue.register_version, ue.burn_policy_version, ue.draw_policy_version"

// eventSQL selects the usage events of f by c.
func eventSQL(d string, f EventFilter, c cursor) *query {
	q := newQuery(d)
	q.add("SELECT ", eventColumns, " FROM usage_events ue WHERE ue.organization_id = ", q.arg(f.OrganizationID))
	eq(q, "ue.pool_id", f.PoolID)
	eq(q, "ue.action", f.Action)
	eq(q, "ue.run_id", f.RunID)
	eq(q, "ue.status", f.Status)
	between(q, "ue.created_at", f.From, f.To)
	c.add(q, "ue.id")
	return q
}

// eq adds col = v when v is set.
func eq[T any](q *query, col string, v *T) {
	if v != nil {
		q.and(col, " = ", q.arg(*v))
	}
}

// between adds from <= col < to for the ends that are set.
func between(q *query, col string, from, to *time.Time) {
	if from != nil {
		q.and(col, " >= ", q.arg(*from))
	}
	if to != nil {
		q.and(col, " < ", q.arg(*to))
	}
}

func scanEntry(rows *sql.Rows) (EntryRow, error) {
	var (
		r                          EntryRow
		grant, event, rv, bpv, dpv sql.NullInt64
		action, run, status, memo  sql.NullString
	)
	err := rows.Scan(&r.ID, &r.CreatedAt, &r.Kind, &r.PoolID, &grant, &r.Amount, &event, &action, &run, &status, &rv, &bpv, &dpv, &memo)
	r.CreatedAt = r.CreatedAt.UTC()
	r.GrantID, r.UsageEventID = nullInt(grant), nullInt(event)
	r.Action, r.RunID, r.Status, r.Memo = action.String, run.String, credit.UsageStatus(status.String), memo.String
	r.RegisterVersion, r.BurnPolicyVersion, r.DrawPolicyVersion = nullInt(rv), nullInt(bpv), nullInt(dpv)
	return r, err
}

func scanEvent(rows *sql.Rows) (EventRow, error) {
	var (
		r                 EventRow
		rv, bpv, dpv      sql.NullInt64
		run, code, reason sql.NullString
	)
	err := rows.Scan(&r.ID, &r.CreatedAt, &r.OccurredAt, &r.PoolID, &r.IdempotencyKey, &r.Action, &run, &r.Status,
		&r.Quantity, &r.Completion, &r.Attempt, &r.Credits, &r.Overage, &r.Decision, &code, &reason, &rv, &bpv, &dpv)
	r.CreatedAt, r.OccurredAt = r.CreatedAt.UTC(), r.OccurredAt.UTC()
	r.RunID, r.ReasonCode, r.Reason = run.String, code.String, reason.String
	r.RegisterVersion, r.BurnPolicyVersion, r.DrawPolicyVersion = nullInt(rv), nullInt(bpv), nullInt(dpv)
	return r, err
}
