package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/ent/usageevent"
	"github.com/creditd/creditd/report"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// readCSV parses an export and checks its header.
func readCSV(t *testing.T, b []byte, header []string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%s", err, b)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], header) {
		t.Fatalf("header = %q, want %q", recs[:min(1, len(recs))], header)
	}
	return recs[1:]
}

// unescape undoes report.Cell.
func unescape(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(s[1])) {
		return s[1:]
	}
	return s
}

func opt(v *int) string {
	if v == nil {
		return ""
	}
	return strconv.Itoa(*v)
}

// ledgerRecord is the row an entry should export as, read through ent
// (unescaped text).
func ledgerRecord(e *ent.LedgerEntry, ev *ent.UsageEvent) []string {
	action, run, status := "", "", ""
	if ev != nil {
		action, run, status = ev.Action, ev.RunID, string(ev.Status)
	}
	return []string{strconv.Itoa(e.ID), e.CreatedAt.UTC().Format(time.RFC3339Nano), string(e.Kind), strconv.Itoa(e.PoolID), opt(e.GrantID),
		e.Amount.String(), opt(e.UsageEventID), action, run, status, opt(e.RegisterVersion), opt(e.BurnPolicyVersion), opt(e.DrawPolicyVersion), e.Memo}
}

func TestExportLedgerCSV(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		defer report.SetLimits(4, report.MaxSummaryRows)() // many pages, the last one short
		var buf bytes.Buffer
		n, err := report.ExportLedgerCSV(ctx, db, report.EntryFilter{OrganizationID: f.org, From: &from, To: &to}, &buf)
		must(t, err)
		recs := readCSV(t, buf.Bytes(), report.LedgerColumns)
		entries, err := db.Client.LedgerEntry.Query().Where(ledgerentry.OrganizationID(f.org)).WithUsageEvent().
			Order(ent.Asc(ledgerentry.FieldID)).All(ctx)
		must(t, err)
		if n != len(recs) || n != len(entries) {
			t.Fatalf("ExportLedgerCSV = %d rows, the CSV has %d, the ledger %d", n, len(recs), len(entries))
		}
		escaped := 0
		for i, e := range entries {
			got := slices.Clone(recs[i])
			for j := range got {
				got[j] = unescape(got[j])
			}
			if want := ledgerRecord(e, e.Edges.UsageEvent); !slices.Equal(got, want) {
				t.Errorf("row %d = %q, want %q", i, got, want)
			}
			if slices.Contains(recs[i], "'"+evilMemo) || slices.Contains(recs[i], "'"+evilAction) {
				escaped++
			}
			for _, c := range recs[i] {
				if c != "" && strings.ContainsRune("=+@", rune(c[0])) {
					t.Errorf("row %d: cell %q could run as a formula", i, c)
				}
			}
		}
		if escaped != 4 { // the grant's memo; the action of the run's HOLD, RELEASE and BURN entries
			t.Errorf("%d rows hold an escaped formula, want 4", escaped)
		}
		// A filter and a range apply to exports as to listings.
		buf.Reset()
		n, err = report.ExportLedgerCSV(ctx, db, report.EntryFilter{OrganizationID: f.org, From: &day2, To: &day3, Kinds: []string{"BURN"}}, &buf)
		if err != nil || n != 3 || len(readCSV(t, buf.Bytes(), report.LedgerColumns)) != 3 {
			t.Errorf("ExportLedgerCSV of day 2's burns = %d, %v; want 3 rows", n, err)
		}
	})
}

func TestExportUsageCSV(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		defer report.SetLimits(5, report.MaxSummaryRows)()
		var buf bytes.Buffer
		n, err := report.ExportUsageCSV(ctx, db, report.EventFilter{OrganizationID: f.org, From: &from, To: &to}, &buf)
		must(t, err)
		recs := readCSV(t, buf.Bytes(), report.UsageColumns)
		events, err := db.Client.UsageEvent.Query().Where(usageevent.OrganizationID(f.org)).Order(ent.Asc(usageevent.FieldID)).All(ctx)
		must(t, err)
		if n != len(recs) || n != len(events) {
			t.Fatalf("ExportUsageCSV = %d rows, the CSV has %d, the events %d", n, len(recs), len(events))
		}
		for i, e := range events {
			want := []string{strconv.Itoa(e.ID), e.CreatedAt.UTC().Format(time.RFC3339Nano), e.OccurredAt.UTC().Format(time.RFC3339Nano),
				strconv.Itoa(e.PoolID), e.IdempotencyKey, report.Cell(e.Action), report.Cell(e.RunID), string(e.Status),
				e.Quantity.String(), e.Completion.String(), strconv.Itoa(e.Attempt), e.Credits.String(), e.Overage.String(),
				string(e.Decision), e.ReasonCode, e.Reason, opt(e.RegisterVersion), opt(e.BurnPolicyVersion), opt(e.DrawPolicyVersion)}
			if !slices.Equal(recs[i], want) {
				t.Errorf("row %d = %q, want %q", i, recs[i], want)
			}
		}
		if last := recs[len(recs)-1]; last[5] != "'"+evilAction || last[6] != "'"+evilRun {
			t.Errorf("the run's action and run id = %q, %q; want them escaped", last[5], last[6])
		}
	})
}

func TestCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {"agent.run", "agent.run"}, {"=1+2", "'=1+2"}, {"+1", "'+1"}, {"-1", "'-1"}, {"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"}, {"\rx", "'\rx"}, {"a=1", "a=1"}, {"'quoted", "'quoted"},
	} {
		if got := report.Cell(tc.in); got != tc.want {
			t.Errorf("Cell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
