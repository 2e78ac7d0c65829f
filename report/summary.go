package report

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/store"
)

// GroupBy is a key a usage summary is grouped by.
type GroupBy string

const (
	ByPool       GroupBy = "POOL"
	ByAction     GroupBy = "ACTION"
	ByCreditType GroupBy = "CREDIT_TYPE"
	ByDay        GroupBy = "DAY"   // the UTC day
	ByWeek       GroupBy = "WEEK"  // the ISO week, from Monday 00:00 UTC
	ByMonth      GroupBy = "MONTH" // the calendar month in UTC
)

// Limits of a summary.
const (
	MaxSummaryDays   = 366
	MaxSummaryRows   = 1000
	MaxFilterValues  = 100 // values of one filter (pool ids, actions, credit types)
	maxSummaryWindow = MaxSummaryDays * 24 * time.Hour
)

// The credit types of entries on no grant: a summary reports the entry's
// kind in their place.
const (
	CreditOverage   = "OVERAGE"   // credits used beyond the balance, billed at the overage price
	CreditBorrow    = "BORROW"    // credits drawn on the next period's allocation
	CreditUncovered = "UNCOVERED" // what a run cost beyond everything that could cover it
)

// SummaryQuery asks for the credits an organisation used in [From, To)
// (the entries' created_at), grouped by GroupBy (none: one total row),
// optionally only for some pools, actions and credit types.
type SummaryQuery struct {
	OrganizationID int
	From, To       time.Time
	GroupBy        []GroupBy
	PoolIDs        []int
	Actions        []string
	CreditTypes    []string // credit.CreditType values, CreditOverage, CreditBorrow, CreditUncovered
}

// SummaryRow is one group. The keys the query did not group by are nil.
type SummaryRow struct {
	PoolID     *int
	Action     *string
	CreditType *string
	Period     *time.Time // start of the DAY, WEEK (Monday) or MONTH, UTC
	// Credits is what the usage events' entries took: BURN, OVERAGE,
	// BORROW and UNCOVERED entries, as a positive amount (gross: refunds
	// are not subtracted).
	Credits decimal.Decimal
	// Refunded is what refunds written in the range gave back for usage
	// events (REFUND entries, and the grants opened for a refund: GRANT
	// entries that name a usage event). Net use is Credits - Refunded.
	Refunded decimal.Decimal
	Events   int // distinct usage events charged (an event may charge several groups)
	Entries  int // ledger entries summed, charges and refunds
}

// maxSummaryRows is MaxSummaryRows (tests lower it).
var maxSummaryRows = MaxSummaryRows

// charging and refunding are the entry kinds a summary sums: what usage
// events are charged (engine/ledger entryRows; HOLD and RELEASE only
// reserve) and what refunds of them give back.
var (
	charging  = kindList(string(credit.EntryBurn), string(credit.EntryOverage), string(credit.EntryBorrow), string(credit.EntryUncovered))
	refunding = kindList(string(credit.EntryRefund), string(credit.EntryGrant))
	summed    = kindList(string(credit.EntryBurn), string(credit.EntryOverage), string(credit.EntryBorrow), string(credit.EntryUncovered),
		string(credit.EntryRefund), string(credit.EntryGrant))
)

// Summary sums an organisation's usage in the database: GROUP BY in SQL,
// decimals summed exactly by the database (see sumFunc), at most
// MaxSummaryRows groups (more is a VALIDATION error asking to narrow the
// query). Rows are ordered by their keys, in the order of q.GroupBy.
func Summary(ctx context.Context, db *store.DB, q SummaryQuery) ([]SummaryRow, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	sq := summarySQL(db.Dialect, q)
	if !sq.postgres() && registerErr != nil {
		return nil, fmt.Errorf("usage summary: %w", registerErr)
	}
	rows, err := db.SQL.QueryContext(ctx, sq.String(), sq.args...)
	if err != nil {
		return nil, fmt.Errorf("usage summary: %w", err)
	}
	defer rows.Close()
	var out []SummaryRow
	for rows.Next() {
		if len(out) == maxSummaryRows {
			return nil, credit.Errorf(credit.CodeValidation,
				"the summary has more than %d rows: narrow the range, filter, or group by fewer keys or a coarser period", maxSummaryRows)
		}
		r, err := scanSummary(rows, q.GroupBy)
		if err != nil {
			return nil, fmt.Errorf("usage summary: %w", err)
		}
		if r.Entries > 0 { // the single row of an ungrouped sum over nothing
			out = append(out, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage summary: %w", err)
	}
	return out, nil
}

// summarySQL is the grouped statement: the entries usage events charged
// or refunds gave back, with their events (the action) and grants (the
// credit type).
func summarySQL(d string, q SummaryQuery) *query {
	sq := newQuery(d)
	pg := sq.postgres()
	var cols, pos []string
	for i, g := range q.GroupBy {
		cols, pos = append(cols, keyExpr(g, pg)), append(pos, strconv.Itoa(i+1))
	}
	cols = append(cols,
		sumFunc(pg, "CASE WHEN le.kind IN "+charging+" THEN le.amount END"),
		sumFunc(pg, "CASE WHEN le.kind IN "+refunding+" THEN le.amount END"),
		"COUNT(DISTINCT CASE WHEN le.kind IN "+charging+" THEN le.usage_event_id END)", "COUNT(*)")
	sq.add("SELECT ", strings.Join(cols, ", "),
		" FROM ledger_entries le JOIN usage_events ue ON ue.id = le.usage_event_id AND ue.organization_id = le.organization_id",
		" LEFT JOIN grants g ON g.id = le.grant_id AND g.organization_id = le.organization_id",
		" WHERE le.organization_id = ", sq.arg(q.OrganizationID), " AND le.kind IN ", summed)
	sq.and("le.created_at >= ", sq.arg(q.From)).and("le.created_at < ", sq.arg(q.To))
	if len(q.PoolIDs) > 0 {
		sq.and("le.pool_id IN ", list(sq, q.PoolIDs))
	}
	if len(q.Actions) > 0 {
		sq.and("ue.action IN ", list(sq, q.Actions))
	}
	if len(q.CreditTypes) > 0 {
		sq.and(creditTypeExpr, " IN ", list(sq, q.CreditTypes))
	}
	if len(pos) > 0 {
		sq.add(" GROUP BY ", strings.Join(pos, ", "), " ORDER BY ", strings.Join(pos, ", "))
	}
	return sq.add(" LIMIT ", strconv.Itoa(maxSummaryRows+1))
}

// creditTypeExpr is an entry's credit type: its grant's, or for an entry
// on no grant its kind (a refund on no grant gives back overage).
var creditTypeExpr = "(CASE WHEN le.grant_id IS NULL THEN (CASE WHEN le.kind = '" + string(credit.EntryRefund) +
	"' THEN '" + CreditOverage + "' ELSE le.kind END) ELSE g.credit_type END)"

// keyExpr is the SQL of a group key. Periods are 'YYYY-MM-DD' text on
// both dialects. On SQLite created_at is text beginning with the UTC date
// (the engine writes UTC times), which the date functions read.
func keyExpr(g GroupBy, postgres bool) string {
	switch {
	case g == ByPool:
		return "le.pool_id"
	case g == ByAction:
		return "ue.action"
	case g == ByCreditType:
		return creditTypeExpr
	case postgres && g == ByDay:
		return "to_char(le.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
	case postgres && g == ByWeek:
		return "to_char(date_trunc('week', le.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
	case postgres && g == ByMonth:
		return "to_char(le.created_at AT TIME ZONE 'UTC', 'YYYY-MM') || '-01'"
	case g == ByDay:
		return "substr(le.created_at, 1, 10)"
	case g == ByWeek:
		return "date(substr(le.created_at, 1, 10), '-6 days', 'weekday 1')"
	default: // ByMonth, checked by Validate
		return "(substr(le.created_at, 1, 7) || '-01')"
	}
}

// scanSummary reads one row: the group keys, then the sums and counts.
func scanSummary(rows *sql.Rows, keys []GroupBy) (SummaryRow, error) {
	var (
		r                 SummaryRow
		credits, refunded string
		dest              = make([]any, 0, len(keys)+4)
		pool              int
		action, ctype     string
		period            string
	)
	for _, g := range keys {
		switch g {
		case ByPool:
			dest, r.PoolID = append(dest, &pool), &pool
		case ByAction:
			dest, r.Action = append(dest, &action), &action
		case ByCreditType:
			dest, r.CreditType = append(dest, &ctype), &ctype
		default:
			dest = append(dest, &period)
		}
	}
	if err := rows.Scan(append(dest, &credits, &refunded, &r.Events, &r.Entries)...); err != nil {
		return r, err
	}
	var err error
	if r.Credits, err = decimal.NewFromString(credits); err != nil {
		return r, err
	}
	r.Credits = r.Credits.Neg()
	if r.Refunded, err = decimal.NewFromString(refunded); err != nil {
		return r, err
	}
	if slices.ContainsFunc(keys, isGrain) {
		p, err := time.Parse(time.DateOnly, period)
		if err != nil {
			return r, fmt.Errorf("period %q: %w", period, err)
		}
		r.Period = &p
	}
	return r, nil
}

func isGrain(g GroupBy) bool { return g == ByDay || g == ByWeek || g == ByMonth }
