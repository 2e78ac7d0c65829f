package report_test

import (
	"context"
	"database/sql"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/report"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// benchRows is the size of the benchmark's ledger.
const benchRows = 1_000_000

// BenchmarkExportLedgerCSV exports a million entries of one organisation
// to io.Discard on PostgreSQL (testdb skips, printing why, when it does
// not answer) and reports rows/s, the peak heap (sampled), the peak heap
// of an export a tenth the size (bounded memory: the two are alike) and
// the ratio of the export's time to a plain scan of the same rows. Run it
// with -benchtime 1x: every run seeds its own database.
func BenchmarkExportLedgerCSV(b *testing.B) {
	db := testdb.Open(b, dialect.Postgres)
	ctx := context.Background()
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	org := seed(b, db, start, benchRows)
	end := start.AddDate(0, 0, 30)
	all := report.EntryFilter{OrganizationID: org, From: &start, To: &end}
	tenth := start.Add(time.Duration(benchRows/10) * time.Second) // two entries per event, an event every 2s
	part := report.EntryFilter{OrganizationID: org, From: &start, To: &tenth}

	b.ReportAllocs()
	b.ResetTimer()
	var n int
	peak := peakHeap(func() {
		for range b.N {
			var err error
			if n, err = report.ExportLedgerCSV(ctx, db, all, io.Discard); err != nil || n != benchRows {
				b.Fatalf("ExportLedgerCSV = %d rows, %v; want %d", n, err, benchRows)
			}
		}
	})
	b.StopTimer()
	export := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(n)/export.Seconds(), "rows/s")
	b.ReportMetric(peak, "peak-heap-MB")
	b.ReportMetric(peakHeap(func() { report.ExportLedgerCSV(ctx, db, part, io.Discard) }), "peak-heap-MB-tenth")
	began := time.Now()
	if got := scan(b, db, org, start, end); got != benchRows {
		b.Fatalf("scan = %d rows, want %d", got, benchRows)
	}
	b.ReportMetric(export.Seconds()/time.Since(began).Seconds(), "export/scan")
}

// seed writes an organisation, a pool, a published register and a grant
// through the ledger service, then benchRows/2 usage events and two BURN
// entries of 1 credit for each with two INSERT ... SELECT FROM
// generate_series, leaving the ledger consistent (the verifier checks it
// when the benchmark ends).
func seed(b *testing.B, db *store.DB, at time.Time, rows int) int {
	b.Helper()
	ctx := context.Background()
	svc := ledger.New(db, ledger.WithClock(func() time.Time { return at.Add(-time.Hour) }))
	reg, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("2")}, {Action: "=big.run", Credits: d("2")}})
	must(b, err)
	reg, err = svc.PublishRegister(ctx, "default", reg.Version, nil)
	must(b, err)
	o, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "Big"})
	must(b, err)
	p, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: o.ID, Kind: credit.PoolAccount, Name: "main"})
	must(b, err)
	g, err := svc.GrantCredits(ctx, ledger.GrantInput{PoolID: p.ID, CreditType: credit.CreditSubscription, Amount: d("2000000")})
	must(b, err)
	steps := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO usage_events (created_at, organization_id, pool_id, idempotency_key, payload_hash, action, status, quantity, completion,
			attempt, run_id, occurred_at, credits, overage, decision, reason, reason_code, register_id, register_version)
		  SELECT $1::timestamptz + i * interval '2 seconds', $2, $3, 'bench-' || i, md5(i::text),
			CASE WHEN i % 10 = 0 THEN '=big.run' ELSE 'agent.run' END, 'SUCCEEDED', 1, 1, 1, '',
			$1::timestamptz + i * interval '2 seconds', 2, 0, 'ALLOWED', '', '', $4, $5
		  FROM generate_series(0, $6 - 1) AS i`, []any{at, o.ID, p.ID, reg.ID, reg.Version, rows / 2}},
		{`INSERT INTO ledger_entries (created_at, organization_id, pool_id, grant_id, kind, amount, usage_event_id, register_id, register_version, memo)
		  SELECT ue.created_at, ue.organization_id, ue.pool_id, $2, 'BURN', -1, ue.id, ue.register_id, ue.register_version, ue.action
		  FROM usage_events ue CROSS JOIN generate_series(1, 2) AS n WHERE ue.organization_id = $1 ORDER BY ue.id, n`, []any{o.ID, g.ID}},
		{`UPDATE grants SET remaining = remaining - $2 WHERE id = $1`, []any{g.ID, rows}},
		{`ANALYZE`, nil},
	}
	for _, s := range steps {
		if _, err := db.SQL.ExecContext(ctx, s.sql, s.args...); err != nil {
			b.Fatalf("seed: %v\n%s", err, s.sql)
		}
	}
	return o.ID
}

// peakHeap runs fn while sampling the live heap every millisecond, and
// returns its peak in MB.
func peakHeap(fn func()) float64 {
	runtime.GC()
	var (
		peak uint64
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	return float64(peak) / (1 << 20)
}

// scan reads the export's rows (the same columns and join) in one
// statement and discards them: the database's part of the export.
func scan(b *testing.B, db *store.DB, org int, from, to time.Time) int {
	b.Helper()
	rows, err := db.SQL.Query(`SELECT le.id, le.created_at, le.kind, le.pool_id, le.grant_id, le.amount, le.usage_event_id, ue.action,
		ue.run_id, ue.status, le.register_version, le.burn_policy_version, le.draw_policy_version, le.memo
		FROM ledger_entries le LEFT JOIN usage_events ue ON ue.id = le.usage_event_id AND ue.organization_id = le.organization_id
		WHERE le.organization_id = $1 AND le.created_at >= $2 AND le.created_at < $3 ORDER BY le.id`, org, from, to)
	must(b, err)
	defer rows.Close()
	cols := make([]sql.RawBytes, 14)
	dest := make([]any, len(cols))
	for i := range cols {
		dest[i] = &cols[i]
	}
	n := 0
	for rows.Next() {
		must(b, rows.Scan(dest...))
		n++
	}
	must(b, rows.Err())
	return n
}
