package kpi_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/kpi"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// Sizes of the KPI benchmark's ledger.
const (
	benchOrgs   = 1000
	benchEvents = 1_000_000
)

// BenchmarkKPIs seeds 1,000 organisations (two segments, each subscribed
// to a monthly plan) and 1,000,000 usage events over a year with their
// BURN entries on PostgreSQL (testdb skips, saying why, when it does not
// answer), then times kpis for the year grouped by month and segment,
// accountHealth for all 1,000 (the first report, which rolls the closed
// months up, apart), and a raw-SQL aggregate of the same burn
// figures (credits and value by month and segment, one statement) in the
// same run. Run it with -benchtime 1x: every run seeds its own database.
func BenchmarkKPIs(b *testing.B) {
	db := testdb.Open(b, dialect.Postgres)
	ctx := context.Background()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seedBench(b, db, start)
	end := start.AddDate(1, 0, 0)
	q := kpi.Query{From: start, To: end, GroupBy: []kpi.GroupBy{kpi.ByMonth, kpi.BySegment}}

	// The first report rolls up the twelve closed months (once); the
	// timed ones read the rollups.
	began := time.Now()
	if _, err := kpi.Compute(ctx, db, q); err != nil {
		b.Fatal(err)
	}
	first := time.Since(began)
	b.ResetTimer()
	var rep kpi.Report
	for range b.N {
		var err error
		if rep, err = kpi.Compute(ctx, db, q); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	kpis := b.Elapsed() / time.Duration(b.N)
	if !rep.Totals.Burned.Equal(d("1000000")) || len(rep.Rows) != 24 {
		b.Fatalf("burned %s in %d rows, want 1000000 in 12 months x 2 segments", rep.Totals.Burned, len(rep.Rows))
	}
	began = time.Now()
	hs, err := kpi.AccountHealth(ctx, db, end)
	if err != nil || len(hs) != benchOrgs {
		b.Fatalf("accountHealth: %d organisations, %v", len(hs), err)
	}
	health := time.Since(began)
	began = time.Now()
	rows, err := db.SQL.QueryContext(ctx, `SELECT to_char(le.created_at AT TIME ZONE 'UTC', 'YYYY-MM'), o.segment, SUM(le.amount), SUM(le.amount * g.unit_price)
FROM ledger_entries le JOIN grants g ON g.id = le.grant_id JOIN organizations o ON o.id = le.organization_id
WHERE le.created_at >= $1 AND le.created_at < $2 GROUP BY 1, 2`, start, end)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	raw := time.Since(began)
	b.ReportMetric(float64(first.Milliseconds()), "first-kpis-ms")
	b.ReportMetric(float64(kpis.Milliseconds()), "kpis-ms")
	b.ReportMetric(float64(health.Milliseconds()), "health-ms")
	b.ReportMetric(float64(raw.Milliseconds()), "raw-sql-ms")
	b.ReportMetric(kpis.Seconds()/raw.Seconds(), "kpis/raw")
}

// seedBench creates the organisations and subscriptions through the
// ledger service, then the events and their entries with INSERT ... SELECT
// FROM generate_series (an event every 31.5 s over the year, organisation
// by organisation in turn, each a BURN of 1 credit on the organisation's
// first period's grant, whose remaining follows).
func seedBench(b *testing.B, db *store.DB, start time.Time) {
	b.Helper()
	ctx := context.Background()
	svc := ledger.New(db, ledger.WithClock(func() time.Time { return start }))
	reg, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("1"), ValuePerAction: dp("0.05"), CostPerAction: dp("0.002")}})
	if err != nil {
		b.Fatal(err)
	}
	if reg, err = svc.PublishRegister(ctx, "default", reg.Version, nil); err != nil {
		b.Fatal(err)
	}
	p, err := svc.CreatePlan(ctx, ledger.PlanInput{Name: "bench", Period: credit.PeriodMonth, IncludedCredits: d("2000"), PricePerCredit: d("0.01"),
		PlatformFee: d("5"), RegisterName: "default", OverageMode: credit.OverageHard, RolloverMode: credit.RolloverNone})
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchOrgs {
		seg := "smb"
		if i%2 == 1 {
			seg = "enterprise"
		}
		o, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "org-" + strconv.Itoa(i), Segment: seg})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: o.ID, Kind: credit.PoolAccount, Name: "main"}); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: o.ID, PlanID: p.ID, StartsAt: start}); err != nil {
			b.Fatal(err)
		}
	}
	for _, s := range []struct {
		sql  string
		args []any
	}{
		{benchOrgsCTE + `INSERT INTO usage_events (created_at, organization_id, pool_id, idempotency_key, payload_hash, action, status, quantity, completion,
			attempt, run_id, occurred_at, credits, overage, decision, reason, reason_code, register_id, register_version)
		  SELECT $1::timestamptz + i * interval '31.5 seconds', o.org, o.pool, 'bench-' || i, md5(i::text), 'agent.run', 'SUCCEEDED', 1, 1, 1, '',
			$1::timestamptz + i * interval '31.5 seconds', 1, 0, 'ALLOWED', '', '', $2, $3
		  FROM generate_series(0, $4 - 1) AS i JOIN bench_orgs o ON o.k = i % $5`, []any{start, reg.ID, reg.Version, benchEvents, benchOrgs}},
		{benchOrgsCTE + `INSERT INTO ledger_entries (created_at, organization_id, pool_id, grant_id, kind, amount, usage_event_id, register_id, register_version, memo)
		  SELECT ue.created_at, ue.organization_id, ue.pool_id, o.grant_id, 'BURN', -1, ue.id, ue.register_id, ue.register_version, ue.action
		  FROM usage_events ue JOIN bench_orgs o ON o.org = ue.organization_id ORDER BY ue.id`, nil},
		{`UPDATE grants SET remaining = remaining - $1`, []any{benchEvents / benchOrgs}},
		{`ANALYZE`, nil},
	} {
		if _, err := db.SQL.ExecContext(ctx, s.sql, s.args...); err != nil {
			b.Fatalf("seed: %v\n%s", err, s.sql)
		}
	}
}

// benchOrgsCTE numbers the organisations (each has one grant so far: its
// first period's) with their pool and grant.
const benchOrgsCTE = `WITH bench_orgs AS (SELECT row_number() OVER (ORDER BY g.organization_id) - 1 AS k, g.organization_id AS org,
  g.pool_id AS pool, g.id AS grant_id FROM grants g) `
