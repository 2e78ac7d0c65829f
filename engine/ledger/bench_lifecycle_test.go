package ledger_test

// Benchmarks of the lifecycle features on PostgreSQL: the period close over
// many subscriptions, and agent runs (a STARTED event that holds credits and
// a SUCCEEDED event that settles them) from concurrent callers. The period
// close is one long operation, so run it once:
//
//	go test ./engine/ledger/ -run '^$' -bench 'PeriodClose' -benchtime 1x -count 1
//	go test ./engine/ledger/ -run '^$' -bench 'RunsConcurrent|RecordUsage/single/' -benchtime 3s -count 1
//
// BenchmarkRunsConcurrent reports events/s as BenchmarkRecordUsage/single
// does (bench_test.go), so the cost of a run's two events can be read as a
// ratio to plain single events measured in the same run.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

const (
	closeSubs     = 10_000 // subscriptions of BenchmarkPeriodClose
	closeIncluded = 100    // the plan's included credits per period
	closeCap      = 50     // its CAPPED rollover
)

// closeStart is the subscriptions' start: the first of a month, so that every
// boundary is the first of a later month.
var closeStart = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

// closeFixture is a database of closeSubs organisations, each with one
// ACCOUNT pool and one subscription to a CAPPED-rollover plan whose period 0
// is open, behind a Service with a settable clock.
type closeFixture struct {
	bench  *benchFixture // db and svc, for verify
	clock  *clock
	stmts  *atomic.Int64 // statements (and BEGIN, COMMIT, ROLLBACK) sent to the database
	subs   int
	closed int // periods opened after period 0
}

// BenchmarkPeriodClose times one RunPeriodClose that opens the next period of
// every subscription: iteration i advances the clock one month and opens
// period closed+1. Setup (outside the timer) subscribes one organisation
// through the service and clones its rows with SQL for the others.
func BenchmarkPeriodClose(b *testing.B) {
	var fx *closeFixture
	b.Run(fmt.Sprintf("subs=%d", closeSubs), func(sb *testing.B) {
		sb.StopTimer()
		if fx == nil {
			t0 := time.Now()
			fx = newCloseFixture(ownerTB{TB: sb, owner: b}, closeSubs)
			sb.Logf("setup of %d subscriptions: %s", fx.subs, time.Since(t0).Round(time.Millisecond))
			name, f := sb.Name(), fx.bench
			b.Cleanup(func() { f.verify(b, name) }) // before the database is dropped (LIFO)
		}
		ctx := context.Background()
		sb.ReportAllocs()
		sb.ResetTimer()
		var stmts int64
		for i := 0; i < sb.N; i++ {
			asOf := closeStart.AddDate(0, fx.closed+1, 0)
			fx.clock.mu.Lock()
			fx.clock.t = asOf
			fx.clock.mu.Unlock()
			before := fx.stmts.Load()
			sb.StartTimer()
			rep, err := fx.bench.svc.RunPeriodClose(ctx, asOf)
			sb.StopTimer()
			stmts += fx.stmts.Load() - before
			if err != nil {
				sb.Fatalf("RunPeriodClose(%s): %v", asOf, err)
			}
			fx.closed++
			fx.check(sb, rep, asOf)
		}
		secs := sb.Elapsed().Seconds()
		sb.ReportMetric(float64(fx.subs*sb.N)/secs, "subs/s")
		sb.ReportMetric(secs/float64(sb.N), "s/close")
		sb.ReportMetric(float64(stmts)/float64(fx.subs*sb.N), "stmts/sub")
	})
}

// check fails tb unless the close opened one period of every subscription
// with the amounts the plan gives: after each close every pool holds the new
// allocation plus the capped rollover, and nothing else unexpired.
func (fx *closeFixture) check(tb testing.TB, rep ledger.PeriodReport, asOf time.Time) {
	tb.Helper()
	n := decimal.NewFromInt(int64(fx.subs))
	// Period 0 ends with 100 unused: 50 roll, 50 expire. Later periods end
	// with 100 SUBSCRIPTION and 50 ROLLOVER: 50 roll, 100 expire.
	expired := decimal.NewFromInt(closeIncluded - closeCap)
	if fx.closed > 1 {
		expired = decimal.NewFromInt(closeIncluded)
	}
	if rep.SubscriptionsClosed != fx.subs || !rep.Allocated.Equal(n.Mul(decimal.NewFromInt(closeIncluded))) ||
		!rep.RolledOver.Equal(n.Mul(decimal.NewFromInt(closeCap))) || !rep.Expired.Equal(n.Mul(expired)) {
		tb.Fatalf("close %d: %d subscriptions closed, expired %s, rolled %s, allocated %s; want %d, %s, %s, %s",
			fx.closed, rep.SubscriptionsClosed, rep.Expired, rep.RolledOver, rep.Allocated,
			fx.subs, n.Mul(expired), n.Mul(decimal.NewFromInt(closeCap)), n.Mul(decimal.NewFromInt(closeIncluded)))
	}
	var wrong, behind int
	if err := fx.bench.db.SQL.QueryRow(`SELECT count(*) FROM pools p WHERE coalesce((SELECT sum(remaining) FROM grants g
WHERE g.pool_id = p.id AND g.expires_at > $1), 0) <> $2`, asOf, closeIncluded+closeCap).Scan(&wrong); err != nil {
		tb.Fatal(err)
	}
	if err := fx.bench.db.SQL.QueryRow(`SELECT count(*) FROM subscriptions WHERE next_period <> $1 OR next_period_at <= $2`,
		fx.closed+1, asOf).Scan(&behind); err != nil {
		tb.Fatal(err)
	}
	if wrong != 0 || behind != 0 {
		tb.Fatalf("close %d: %d pools without %d unexpired credits, %d subscriptions not on period %d",
			fx.closed, wrong, closeIncluded+closeCap, behind, fx.closed+1)
	}
}

func newCloseFixture(tb testing.TB, subs int) *closeFixture {
	tb.Helper()
	ctx := context.Background()
	db, stmts := openCounted(tb)
	c := &clock{t: closeStart}
	svc := ledger.New(db, ledger.WithClock(c.now))
	fx := &closeFixture{bench: &benchFixture{db: db, svc: svc}, clock: c, stmts: stmts, subs: subs}
	if _, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{
		{Action: benchAction, Credits: decimal.NewFromInt(benchWeight)},
	}); err != nil {
		tb.Fatalf("save register draft: %v", err)
	}
	if _, err := svc.PublishRegister(ctx, "default", 1, nil); err != nil {
		tb.Fatalf("publish register: %v", err)
	}
	cp := decimal.NewFromInt(closeCap)
	p, err := svc.CreatePlan(ctx, ledger.PlanInput{Name: "bench-capped", Period: credit.PeriodMonth,
		IncludedCredits: decimal.NewFromInt(closeIncluded), PricePerCredit: decimal.RequireFromString("0.01"),
		PlatformFee: decimal.NewFromInt(5), RegisterName: "default", OverageMode: credit.OverageHard,
		RolloverMode: credit.RolloverCapped, RolloverCap: &cp})
	if err != nil {
		tb.Fatalf("CreatePlan: %v", err)
	}
	// The template: one organisation subscribed through the service, which
	// opens its period 0 (a SUBSCRIPTION grant with its GRANT entry, the
	// platform fee, the period row) and sets next_period 1 at the boundary.
	o, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "bench-1"})
	if err != nil {
		tb.Fatalf("CreateOrganization: %v", err)
	}
	pl, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: o.ID, Kind: credit.PoolAccount, Name: "account"})
	if err != nil {
		tb.Fatalf("CreatePool: %v", err)
	}
	sub, err := svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: o.ID, PlanID: p.ID, StartsAt: closeStart})
	if err != nil {
		tb.Fatalf("Subscribe: %v", err)
	}
	if sub.NextPeriod != 1 || sub.NextPeriodAt == nil || !sub.NextPeriodAt.Equal(closeStart.AddDate(0, 1, 0)) {
		tb.Fatalf("Subscribe left next period %d at %v; want 1 at %s", sub.NextPeriod, sub.NextPeriodAt, closeStart.AddDate(0, 1, 0))
	}
	if err := cloneSubscriptions(ctx, db.SQL, o.ID, pl.ID, sub.ID, subs-1); err != nil {
		tb.Fatalf("clone the subscription: %v", err)
	}
	for _, q := range []string{
		`SELECT count(*) FROM subscriptions WHERE next_period = 1 AND next_period_at = $1`,
		`SELECT count(*) FROM subscription_periods WHERE period_index = 0 AND starts_at = $1`,
		`SELECT count(*) FROM grants WHERE effective_at = $1 AND remaining = amount`,
	} {
		var n int
		at := closeStart
		if strings.HasPrefix(q, "SELECT count(*) FROM subscriptions ") {
			at = closeStart.AddDate(0, 1, 0)
		}
		if err := db.SQL.QueryRowContext(ctx, q, at).Scan(&n); err != nil || n != subs {
			tb.Fatalf("%s: %d, %v; want %d", q, n, err, subs)
		}
	}
	fx.bench.verify(tb, "setup")
	if _, err := db.SQL.ExecContext(ctx, `ANALYZE`); err != nil { // as autovacuum would after the load
		tb.Fatal(err)
	}
	return fx
}

// cloneSubscriptions copies, in one transaction, organisation org (its pool,
// its subscription sub and the rows opening its period 0: grant, ledger
// entry, charge, period) for n more organisations. Every column is copied
// but the id and the references, which point at the new rows; the columns
// are read from the catalogue, so that columns added later are copied too.
// Audit entries are not copied: nothing reads them.
func cloneSubscriptions(ctx context.Context, db *sql.DB, org, pool, sub, n int) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// Each new pool has one grant, so a grant names its pool's copy.
	steps := []struct {
		table, from, where string
		set                map[string]string
	}{
		{"organizations", "generate_series(2, $2::bigint) AS i", "t.id = $1", map[string]string{"name": "'bench-' || i"}},
		{"pools", "organizations o", "t.id = $1 AND o.id <> $2",
			map[string]string{"organization_id": "o.id"}},
		{"subscriptions", "pools p", "t.id = $1 AND p.id <> $2",
			map[string]string{"organization_id": "p.organization_id", "pool_id": "p.id"}},
		{"grants", "pools p", "t.pool_id = $1 AND p.id <> $1",
			map[string]string{"organization_id": "p.organization_id", "pool_id": "p.id"}},
		{"ledger_entries", "grants g", "t.pool_id = $1 AND g.pool_id <> $1",
			map[string]string{"organization_id": "g.organization_id", "pool_id": "g.pool_id", "grant_id": "g.id"}},
		{"charges", "subscriptions s", "t.subscription_id = $1 AND s.id <> $1",
			map[string]string{"organization_id": "s.organization_id", "subscription_id": "s.id"}},
		{"subscription_periods", "subscriptions s", "t.subscription_id = $1 AND s.id <> $1",
			map[string]string{"subscription_id": "s.id"}},
	}
	args := [][]any{{org, n + 1}, {pool, org}, {sub, pool}, {pool}, {pool}, {sub}, {sub}}
	for k, st := range steps {
		cols, err := columns(ctx, tx, st.table)
		if err != nil {
			return err
		}
		names, exprs := make([]string, len(cols)), make([]string, len(cols))
		for i, c := range cols {
			names[i] = pq.QuoteIdentifier(c)
			exprs[i] = "t." + names[i]
			if e, ok := st.set[c]; ok {
				exprs[i] = e
			}
		}
		q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s t, %s WHERE %s", st.table, strings.Join(names, ", "),
			strings.Join(exprs, ", "), st.table, st.from, st.where)
		res, err := tx.ExecContext(ctx, q, args[k]...)
		if err != nil {
			return fmt.Errorf("%s: %w", st.table, err)
		}
		if got, _ := res.RowsAffected(); got != int64(n) {
			return fmt.Errorf("%s: %d rows copied, want %d", st.table, got, n)
		}
	}
	return tx.Commit()
}

// columns lists a table's columns but its identity column.
func columns(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = $1 AND column_name <> 'id' AND is_generated = 'NEVER'
ORDER BY ordinal_position`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("table %s has no columns", table)
	}
	return out, rows.Err()
}

// openCounted is testdb.Open for PostgreSQL through a driver that counts the
// statements sent (each BEGIN, COMMIT and ROLLBACK counts as one). With
// lib/pq's defaults a statement with parameters costs two round trips
// (Parse/Describe, then Bind/Execute); one without, one.
func openCounted(tb testing.TB) (*store.DB, *atomic.Int64) {
	tb.Helper()
	url := testdb.NewURL(tb, dialect.Postgres)
	conn, err := pq.NewConnector(url)
	if err != nil {
		tb.Fatalf("connector: %v", err)
	}
	n := new(atomic.Int64)
	sqldb := sql.OpenDB(countConnector{conn, n})
	sqldb.SetMaxOpenConns(64) // as store.Open
	sqldb.SetMaxIdleConns(64)
	if err := sqldb.Ping(); err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	db := &store.DB{Client: ent.NewClient(ent.Driver(entsql.OpenDB(dialect.Postgres, sqldb))), SQL: sqldb, Dialect: dialect.Postgres}
	tb.Cleanup(func() { db.Close() }) // before NewURL's cleanup drops the database
	return db, n
}

type countConnector struct {
	driver.Connector
	n *atomic.Int64
}

func (c countConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countConn{Conn: conn, n: c.n}, nil
}

// countConn forwards to lib/pq's connection, which implements every
// interface below.
type countConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c *countConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.n.Add(1)
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return countTx{tx, c.n}, nil
}

func (c *countConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.n.Add(1)
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c *countConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.n.Add(1)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *countConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *countConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

func (c *countConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *countConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *countConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

type countTx struct {
	driver.Tx
	n *atomic.Int64
}

func (t countTx) Commit() error   { t.n.Add(1); return t.Tx.Commit() }
func (t countTx) Rollback() error { t.n.Add(1); return t.Tx.Rollback() }

// BenchmarkRunsConcurrent: benchCallers concurrent callers each record a
// run, a STARTED event (holding its expected credit) then a SUCCEEDED event
// of the same run id (releasing the hold and burning), over benchOrgs
// organisations and over one hot one. One op is one run.
func BenchmarkRunsConcurrent(b *testing.B) {
	call := func(fx *benchFixture, ctx context.Context, org int) error { return fx.serviceRun(ctx, org) }
	for _, bc := range []benchCase{{"orgs=many", benchOrgs, 2, call}, {"orgs=hot", 1, 2, call}} {
		var fx *benchFixture // set up on the first b.N trial, reused by the next ones
		b.Run(bc.name, func(sb *testing.B) {
			if fx == nil {
				fx = newBenchFixture(ownerTB{TB: sb, owner: b}, bc.norgs)
				name, f := sb.Name(), fx
				b.Cleanup(func() { f.verify(b, name); f.checkHoldsSettled(b, name) })
			}
			runParallel(sb, fx, bc) // reports events/s
			if !sb.Failed() {
				sb.ReportMetric(float64(sb.N)/sb.Elapsed().Seconds(), "runs/s")
			}
		})
	}
}

// serviceRun records one run of organisation index i: STARTED, then SUCCEEDED.
func (fx *benchFixture) serviceRun(ctx context.Context, i int) error {
	run := "run-" + fx.key()
	in := fx.input(i)
	in.RunID, in.Status = run, credit.StatusStarted
	res, err := fx.svc.RecordUsage(ctx, in)
	if err != nil {
		return fmt.Errorf("STARTED: %w", err)
	}
	one := decimal.NewFromInt(benchWeight)
	if res.Duplicate || res.Decision != credit.DecisionAllowed || !res.Reserved.Equal(one) || !res.Credits.IsZero() {
		return fmt.Errorf("STARTED: decision %s, reserved %s, credits %s, duplicate %v, reason %q",
			res.Decision, res.Reserved, res.Credits, res.Duplicate, res.Reason)
	}
	in = fx.input(i)
	in.RunID, in.Status = run, credit.StatusSucceeded
	if res, err = fx.svc.RecordUsage(ctx, in); err != nil {
		return fmt.Errorf("SUCCEEDED: %w", err)
	}
	if res.Duplicate || res.Decision != credit.DecisionAllowed || !res.Credits.Equal(one) {
		return fmt.Errorf("SUCCEEDED: decision %s, credits %s, duplicate %v, reason %q",
			res.Decision, res.Credits, res.Duplicate, res.Reason)
	}
	return nil
}

// checkHoldsSettled fails tb when a run's hold is left unsettled.
func (fx *benchFixture) checkHoldsSettled(tb testing.TB, what string) {
	tb.Helper()
	var open, holds int
	if err := fx.db.SQL.QueryRow(`SELECT count(*) FILTER (WHERE status <> 'SETTLED'), count(*) FROM holds`).Scan(&open, &holds); err != nil {
		tb.Errorf("%s: %v", what, err)
		return
	}
	if open != 0 {
		tb.Errorf("%s: %d of %d holds not settled", what, open, holds)
	}
}
