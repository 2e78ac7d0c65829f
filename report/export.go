package report

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/store"
)

// MaxExportDays is the longest range one export covers.
const MaxExportDays = 366

// exportPage is how many rows an export reads per statement: its memory
// is one page, whatever the size of the export.
var exportPage = 5000

// The CSV columns, in order.
var (
	LedgerColumns = []string{"id", "created_at", "kind", "pool_id", "grant_id", "amount", "usage_event_id", "action", "run_id", "status",
		"register_version", "burn_policy_version", "draw_policy_version", "memo"}
	UsageColumns = []string{"id", "created_at", "occurred_at", "pool_id", "idempotency_key", "action", "run_id", "status",
		"quantity", "completion", "attempt", "credits", "overage", "decision", "reason_code", "reason",
		"register_version", "burn_policy_version", "draw_policy_version"}
)

// ExportLedgerCSV writes the entries f selects to w as CSV, oldest (lowest
// id) first: a header row (LedgerColumns), then one row per entry. It
// returns the rows written, header excluded. f.From and f.To are required,
// at most MaxExportDays apart.
//
// The export reads keyset pages (id > last ORDER BY id LIMIT n), each page
// read to its end before it is written, so neither a large export nor a
// slow reader holds a connection or more than one page of memory. Times
// are RFC 3339 in UTC with their fraction, decimals their exact digits;
// text a spreadsheet could run as a formula is escaped (see Cell).
func ExportLedgerCSV(ctx context.Context, db *store.DB, f EntryFilter, w io.Writer) (rows int, err error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if err := checkExport(f.From, f.To); err != nil {
		return 0, err
	}
	page := func(after int) *query { return entrySQL(db.Dialect, f, cursor{after: after, limit: exportPage}) }
	return export(ctx, db, w, LedgerColumns, page, scanEntry, ledgerRecord)
}

// ExportUsageCSV writes the usage events f selects to w as CSV (header
// UsageColumns), as ExportLedgerCSV.
func ExportUsageCSV(ctx context.Context, db *store.DB, f EventFilter, w io.Writer) (rows int, err error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if err := checkExport(f.From, f.To); err != nil {
		return 0, err
	}
	page := func(after int) *query { return eventSQL(db.Dialect, f, cursor{after: after, limit: exportPage}) }
	return export(ctx, db, w, UsageColumns, page, scanEvent, usageRecord)
}

func checkExport(from, to *time.Time) error {
	switch {
	case from == nil:
		return credit.Invalid("from", "is required for an export")
	case to == nil:
		return credit.Invalid("to", "is required for an export")
	}
	return checkRange(*from, *to, MaxExportDays)
}

// export writes the header, then page after page until one comes back
// short, flushing after each page. record fills rec from a row and returns
// the row's id, the next page's cursor.
func export[T any](ctx context.Context, db *store.DB, w io.Writer, header []string, page func(after int) *query,
	scan func(*sql.Rows) (T, error), record func(T, []string) int) (int, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return 0, err
	}
	rec := make([]string, len(header))
	n, last := 0, 0
	for {
		rows, err := fetch(ctx, db, page(last), scan)
		if err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		for _, r := range rows {
			last = record(r, rec)
			if err := cw.Write(rec); err != nil {
				return n, err
			}
			n++
		}
		if cw.Flush(); cw.Error() != nil {
			return n, cw.Error()
		}
		if len(rows) < exportPage {
			return n, nil
		}
	}
}

func ledgerRecord(r EntryRow, rec []string) int {
	rec[0], rec[1], rec[2], rec[3] = strconv.Itoa(r.ID), csvTime(r.CreatedAt), string(r.Kind), strconv.Itoa(r.PoolID)
	rec[4], rec[5], rec[6] = csvInt(r.GrantID), r.Amount.String(), csvInt(r.UsageEventID)
	rec[7], rec[8], rec[9] = Cell(r.Action), Cell(r.RunID), string(r.Status)
	rec[10], rec[11], rec[12], rec[13] = csvInt(r.RegisterVersion), csvInt(r.BurnPolicyVersion), csvInt(r.DrawPolicyVersion), Cell(r.Memo)
	return r.ID
}

func usageRecord(r EventRow, rec []string) int {
	rec[0], rec[1], rec[2], rec[3] = strconv.Itoa(r.ID), csvTime(r.CreatedAt), csvTime(r.OccurredAt), strconv.Itoa(r.PoolID)
	rec[4], rec[5], rec[6], rec[7] = Cell(r.IdempotencyKey), Cell(r.Action), Cell(r.RunID), string(r.Status)
	rec[8], rec[9], rec[10] = r.Quantity.String(), r.Completion.String(), strconv.Itoa(r.Attempt)
	rec[11], rec[12], rec[13], rec[14], rec[15] = r.Credits.String(), r.Overage.String(), string(r.Decision), Cell(r.ReasonCode), Cell(r.Reason)
	rec[16], rec[17], rec[18] = csvInt(r.RegisterVersion), csvInt(r.BurnPolicyVersion), csvInt(r.DrawPolicyVersion)
	return r.ID
}

func csvTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func csvInt(v *int) string {
	if v == nil {
		return ""
	}
	return strconv.Itoa(*v)
}

// Cell escapes a text value against CSV (formula) injection, as OWASP
// recommends: a value beginning with =, +, -, @, a tab or a carriage return
// is one a spreadsheet may run as a formula, so it gets a leading single
// quote, which spreadsheets show as text. Only text that comes from users
// (actions, run ids, idempotency keys, memos, reasons) is escaped; numbers,
// times and enum values are written by this package and left as they are
// (a negative amount stays a number).
func Cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
