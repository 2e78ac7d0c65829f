package ledger_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// BenchmarkSimulate replays 1,000,000 stored usage events (100
// organisations, an event every 31.5 s over a year, each a BURN of 1
// credit on the organisation's grant) on PostgreSQL, unchanged and with
// agent.run re-weighted, and reports events/s and the peak heap, and the
// peak heap of a replay of a tenth of the range (memory that does not grow
// with the range: the two are alike). Run it with -benchtime 1x.
func BenchmarkSimulate(b *testing.B) {
	db := testdb.Open(b, dialect.Postgres)
	ctx := context.Background()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	svc := seedSimulation(b, db, start, 100, 1_000_000)
	year := ledger.SimulationInput{From: start, To: start.AddDate(1, 0, 0),
		Weights: []ledger.WeightInput{{Action: "agent.run", Credits: d("2")}}}
	b.ResetTimer()
	var rep ledger.SimulationReport
	peak := simPeakHeap(func() {
		for range b.N {
			var err error
			if rep, err = svc.Simulate(ctx, year); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	if rep.Events != 1_000_000 {
		b.Fatalf("replayed %d events, want 1000000", rep.Events)
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(rep.Events)/per.Seconds(), "events/s")
	b.ReportMetric(peak, "peak-heap-MB")
	tenth := year
	tenth.To = start.Add(year.To.Sub(start) / 10)
	b.ReportMetric(simPeakHeap(func() { svc.Simulate(ctx, tenth) }), "peak-heap-MB-tenth")
}

func seedSimulation(b *testing.B, db *store.DB, start time.Time, orgs, events int) *ledger.Service {
	b.Helper()
	ctx := context.Background()
	svc := ledger.New(db, ledger.WithClock(func() time.Time { return start }))
	reg, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("1")}})
	if err != nil {
		b.Fatal(err)
	}
	if reg, err = svc.PublishRegister(ctx, "default", reg.Version, nil); err != nil {
		b.Fatal(err)
	}
	for i := range orgs {
		o, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "org-" + strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		p, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: o.ID, Kind: credit.PoolAccount, Name: "main"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.GrantCredits(ctx, ledger.GrantInput{PoolID: p.ID, CreditType: credit.CreditOnDemand, Amount: d("100000")}); err != nil {
			b.Fatal(err)
		}
	}
	cte := `WITH o AS (SELECT row_number() OVER (ORDER BY g.organization_id) - 1 AS k, g.organization_id AS org, g.pool_id AS pool, g.id AS grant_id FROM grants g) `
	for _, s := range []struct {
		sql  string
		args []any
	}{
		{cte + `INSERT INTO usage_events (created_at, organization_id, pool_id, idempotency_key, payload_hash, action, status, quantity, completion,
			attempt, run_id, occurred_at, credits, overage, decision, reason, reason_code, register_id, register_version)
		  SELECT $1::timestamptz + i * interval '31.5 seconds', o.org, o.pool, 'sim-' || i, md5(i::text), 'agent.run', 'SUCCEEDED', 1, 1, 1, '',
			$1::timestamptz + i * interval '31.5 seconds', 1, 0, 'ALLOWED', '', '', $2, $3
		  FROM generate_series(0, $4 - 1) AS i JOIN o ON o.k = i % $5`, []any{start, reg.ID, reg.Version, events, orgs}},
		{cte + `INSERT INTO ledger_entries (created_at, organization_id, pool_id, grant_id, kind, amount, usage_event_id, register_id, register_version, memo)
		  SELECT ue.created_at, ue.organization_id, ue.pool_id, o.grant_id, 'BURN', -1, ue.id, ue.register_id, ue.register_version, ue.action
		  FROM usage_events ue JOIN o ON o.org = ue.organization_id ORDER BY ue.id`, nil},
		{`UPDATE grants SET remaining = remaining - $1`, []any{events / orgs}},
		{`ANALYZE`, nil},
	} {
		if _, err := db.SQL.ExecContext(ctx, s.sql, s.args...); err != nil {
			b.Fatalf("seed: %v\n%s", err, s.sql)
		}
	}
	return svc
}

// simPeakHeap runs fn sampling the live heap every millisecond; its peak in MB.
func simPeakHeap(fn func()) float64 {
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
