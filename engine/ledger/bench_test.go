package ledger_test

// Throughput benchmarks of the usage hot path on PostgreSQL, each paired with
// a hand-written database/sql baseline doing the minimum the same schema
// needs (event row under its unique key, conditional debit, BURN entry), at
// the same concurrency, so that the figures can be read as ratios measured
// in the same run on a noisy machine:
//
//	go test ./engine/ledger/ -run '^$' -bench . -benchtime 3s -count 1
//
// Every sub-benchmark gets its own fresh database, set up once (not per b.N
// trial) and checked with Service.Verify when the benchmark ends.
// TestBenchSetup runs the same operations briefly as an ordinary test.

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

const (
	benchCallers = 16           // concurrent callers in every benchmark
	benchOrgs    = 256          // organisations of orgs=many
	benchBatch   = 100          // events per batch call
	benchAction  = "bench.call" // action in the published "default" register
	benchWeight  = 1            // its fixed weight (credits per event)
	benchGrant   = 1_000_000_000_000
	payloadHash  = "0000000000000000000000000000000000000000000000000000000000000000"
)

// benchFixture is one fresh database with organisations, each owning one
// ACCOUNT pool with one huge SUBSCRIPTION grant.
type benchFixture struct {
	db     *store.DB
	svc    *ledger.Service
	orgs   []int
	pools  []int // pools[i] is orgs[i]'s ACCOUNT pool
	grants []int // grants[i] is the grant in pools[i]
	seq    atomic.Int64
	prefix string
	reg    int // the published register the raw baseline names (version 1)
}

// ownerTB is a sub-benchmark's testing.TB whose cleanups run when owner (the
// parent benchmark) ends: a sub-benchmark's function runs once per b.N trial,
// and its database must outlive those trials.
type ownerTB struct {
	testing.TB
	owner testing.TB
}

func (o ownerTB) Cleanup(f func()) { o.owner.Cleanup(f) }

func newBenchFixture(tb testing.TB, norgs int) *benchFixture {
	tb.Helper()
	ctx := context.Background()
	db := testdb.Open(tb, dialect.Postgres)
	db.SQL.SetMaxOpenConns(64) // as store.Open; the callers need at most benchCallers
	db.SQL.SetMaxIdleConns(64)
	svc := ledger.New(db)
	reg, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{
		{Action: benchAction, Credits: decimal.NewFromInt(benchWeight)},
	})
	if err != nil {
		tb.Fatalf("save register draft: %v", err)
	}
	if _, err := svc.PublishRegister(ctx, "default", 1, nil); err != nil {
		tb.Fatalf("publish register: %v", err)
	}
	fx := &benchFixture{db: db, svc: svc, orgs: make([]int, norgs), pools: make([]int, norgs), grants: make([]int, norgs),
		prefix: strconv.FormatInt(time.Now().UnixNano(), 36) + "-", reg: reg.ID}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     atomic.Int64
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= norgs {
					return
				}
				if err := fx.addOrg(ctx, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		tb.Fatalf("set up organisations: %v", firstErr)
	}
	return fx
}

func (fx *benchFixture) addOrg(ctx context.Context, i int) error {
	o, err := fx.svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "bench-" + strconv.Itoa(i)})
	if err != nil {
		return err
	}
	p, err := fx.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: o.ID, Kind: credit.PoolAccount, Name: "account"})
	if err != nil {
		return err
	}
	g, err := fx.svc.GrantCredits(ctx, ledger.GrantInput{PoolID: p.ID, CreditType: credit.CreditSubscription,
		Amount: decimal.NewFromInt(benchGrant), Memo: "bench"})
	if err != nil {
		return err
	}
	fx.orgs[i], fx.pools[i], fx.grants[i] = o.ID, p.ID, g.ID
	return nil
}

// key returns an idempotency key never used before in this database.
func (fx *benchFixture) key() string {
	return fx.prefix + strconv.FormatInt(fx.seq.Add(1), 10)
}

func (fx *benchFixture) input(i int) engine.UsageInput {
	return engine.UsageInput{IdempotencyKey: fx.key(), OrganizationID: fx.orgs[i], Action: benchAction}
}

// serviceSingle records one event for organisation index i through the service.
func (fx *benchFixture) serviceSingle(ctx context.Context, i int) error {
	res, err := fx.svc.RecordUsage(ctx, fx.input(i))
	if err != nil {
		return err
	}
	return checkResult(res)
}

// serviceSinglePool is serviceSingle naming the pool, which spares the
// service its look-up of the organisation's default ACCOUNT pool.
func (fx *benchFixture) serviceSinglePool(ctx context.Context, i int) error {
	in := fx.input(i)
	in.PoolID = &fx.pools[i]
	res, err := fx.svc.RecordUsage(ctx, in)
	if err != nil {
		return err
	}
	return checkResult(res)
}

// serviceBatch records n events of organisation index i in one batch.
func (fx *benchFixture) serviceBatch(ctx context.Context, i, n int) error {
	ins := make([]engine.UsageInput, n)
	for k := range ins {
		ins[k] = fx.input(i)
	}
	res, err := fx.svc.RecordUsageBatch(ctx, ins)
	if err != nil {
		return err
	}
	if len(res) != n {
		return fmt.Errorf("%d results for %d events", len(res), n)
	}
	for _, r := range res {
		if err := checkResult(r); err != nil {
			return err
		}
	}
	return nil
}

func checkResult(r ledger.UsageResult) error {
	if r.Duplicate || r.Decision != credit.DecisionAllowed || !r.Credits.Equal(decimal.NewFromInt(benchWeight)) || len(r.Draws) != 1 {
		return fmt.Errorf("unexpected result: decision %s, credits %s, duplicate %v, %d draws, reason %q",
			r.Decision, r.Credits, r.Duplicate, len(r.Draws), r.Reason)
	}
	return nil
}

// The baseline: the minimum by hand on the same schema, including what the
// ledger invariants ask of every row (the register version that priced an
// event and its entries), so that Verify passes on it too.

const rawEventCols = `(created_at, organization_id, pool_id, idempotency_key, payload_hash, action, status, quantity, completion, attempt, occurred_at, credits, overage, decision, register_id, register_version)`

const rawEntryCols = `(created_at, organization_id, pool_id, grant_id, kind, amount, register_id, register_version, usage_event_id)`

// rawSingle: INSERT the event, conditional debit, INSERT the BURN entry, COMMIT.
func (fx *benchFixture) rawSingle(ctx context.Context, i int) (err error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	org, pool, grant := fx.orgs[i], fx.pools[i], fx.grants[i]
	tx, err := fx.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var ev int64
	if err = tx.QueryRowContext(ctx, `INSERT INTO usage_events `+rawEventCols+`
VALUES ($1, $2, $3, $4, $5, $6, 'SUCCEEDED', 1, 1, 1, $1, $7, 0, 'ALLOWED', $8, 1) RETURNING id`,
		now, org, pool, fx.key(), payloadHash, benchAction, benchWeight, fx.reg).Scan(&ev); err != nil {
		return err
	}
	if err = rawDebit(ctx, tx, grant, benchWeight); err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, `INSERT INTO ledger_entries `+rawEntryCols+` VALUES ($1, $2, $3, $4, 'BURN', $5, $6, 1, $7)`,
		now, org, pool, grant, -benchWeight, fx.reg, ev); err != nil {
		return err
	}
	return tx.Commit()
}

// rawBatch: one multi-row INSERT of n events, one UPDATE of the grant by the
// total, one multi-row INSERT of n entries, COMMIT.
func (fx *benchFixture) rawBatch(ctx context.Context, i, n int) (err error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	org, pool, grant := fx.orgs[i], fx.pools[i], fx.grants[i]
	var q strings.Builder
	q.WriteString(`INSERT INTO usage_events ` + rawEventCols + ` VALUES `)
	args := []any{now, org, pool, payloadHash, benchAction, benchWeight, fx.reg}
	for k := 0; k < n; k++ {
		if k > 0 {
			q.WriteByte(',')
		}
		args = append(args, fx.key())
		fmt.Fprintf(&q, "($1, $2, $3, $%d, $4, $5, 'SUCCEEDED', 1, 1, 1, $1, $6, 0, 'ALLOWED', $7, 1)", len(args))
	}
	q.WriteString(" RETURNING id")
	tx, err := fx.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return err
	}
	ids := make([]int64, 0, n)
	for rows.Next() {
		var id int64
		if err = rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	if err = rows.Err(); err != nil {
		return err
	}
	if len(ids) != n {
		return fmt.Errorf("inserted %d events, want %d", len(ids), n)
	}
	if err = rawDebit(ctx, tx, grant, benchWeight*n); err != nil {
		return err
	}
	q.Reset()
	q.WriteString(`INSERT INTO ledger_entries ` + rawEntryCols + ` VALUES `)
	args = append(args[:0], now, org, pool, grant, -benchWeight, fx.reg)
	for k, id := range ids {
		if k > 0 {
			q.WriteByte(',')
		}
		args = append(args, id)
		fmt.Fprintf(&q, "($1, $2, $3, $4, 'BURN', $5, $6, 1, $%d)", len(args))
	}
	if _, err = tx.ExecContext(ctx, q.String(), args...); err != nil {
		return err
	}
	return tx.Commit()
}

func rawDebit(ctx context.Context, tx *sql.Tx, grant, amount int) error {
	res, err := tx.ExecContext(ctx, `UPDATE grants SET remaining = remaining - $1 WHERE id = $2 AND remaining >= $1`, amount, grant)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("debit of grant %d: %d rows (%v)", grant, n, err)
	}
	return nil
}

// verify fails tb when the ledger's invariants are broken.
func (fx *benchFixture) verify(tb testing.TB, what string) {
	tb.Helper()
	vs, err := fx.svc.Verify(context.Background())
	if err != nil {
		tb.Errorf("%s: verify: %v", what, err)
		return
	}
	for i, v := range vs {
		if i == 10 {
			tb.Errorf("%s: ... %d violations in all", what, len(vs))
			break
		}
		tb.Errorf("%s: violation %s", what, v)
	}
}

// benchCase is one sub-benchmark: how each call writes, and how many events
// a call records.
type benchCase struct {
	name   string
	norgs  int
	events int
	call   func(fx *benchFixture, ctx context.Context, org int) error
}

func singleCases(call func(fx *benchFixture, ctx context.Context, org int) error) []benchCase {
	return []benchCase{
		{"single/orgs=many", benchOrgs, 1, call},
		{"single/orgs=hot", 1, 1, call},
	}
}

func batchCases(call func(fx *benchFixture, ctx context.Context, org, n int) error) []benchCase {
	c := func(fx *benchFixture, ctx context.Context, org int) error { return call(fx, ctx, org, benchBatch) }
	return []benchCase{
		{"batch100/orgs=many", benchOrgs, benchBatch, c},
		{"batch100/orgs=hot", 1, benchBatch, c},
	}
}

func runCases(parent *testing.B, cases []benchCase) {
	for _, bc := range cases {
		var fx *benchFixture // set up on the first b.N trial, reused by the next ones
		parent.Run(bc.name, func(b *testing.B) {
			if fx == nil {
				fx = newBenchFixture(ownerTB{TB: b, owner: parent}, bc.norgs)
				name, f := b.Name(), fx
				// Runs before the database is closed and dropped (cleanups are LIFO).
				parent.Cleanup(func() { f.verify(parent, name) })
			}
			runParallel(b, fx, bc)
		})
	}
}

func runParallel(b *testing.B, fx *benchFixture, bc benchCase) {
	ctx := context.Background()
	p := (benchCallers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	b.SetParallelism(p)
	b.ReportAllocs()
	var (
		events   atomic.Int64
		failures atomic.Int64
		firstErr atomic.Pointer[error]
	)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			org := rand.IntN(len(fx.orgs))
			if err := bc.call(fx, ctx, org); err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				continue
			}
			events.Add(int64(bc.events))
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(events.Load())/b.Elapsed().Seconds(), "events/s")
	if n := failures.Load(); n > 0 {
		b.Errorf("%d of %d calls failed; first: %v", n, b.N, *firstErr.Load())
	}
}

func BenchmarkRecordUsage(b *testing.B) {
	cases := singleCases(func(fx *benchFixture, ctx context.Context, org int) error { return fx.serviceSingle(ctx, org) })
	cases = append(cases, batchCases(func(fx *benchFixture, ctx context.Context, org, n int) error { return fx.serviceBatch(ctx, org, n) })...)
	// Diagnostic: the same as single/orgs=many with PoolID set.
	cases = append(cases, benchCase{"single+poolId/orgs=many", benchOrgs, 1,
		func(fx *benchFixture, ctx context.Context, org int) error { return fx.serviceSinglePool(ctx, org) }})
	runCases(b, cases)
}

func BenchmarkRawSQL(b *testing.B) {
	cases := singleCases(func(fx *benchFixture, ctx context.Context, org int) error { return fx.rawSingle(ctx, org) })
	cases = append(cases, batchCases(func(fx *benchFixture, ctx context.Context, org, n int) error { return fx.rawBatch(ctx, org, n) })...)
	runCases(b, cases)
}

// TestBenchSetup runs every benchmark operation briefly, concurrently, and
// checks that the ledger stays consistent: Verify finds nothing and each
// grant lost exactly the credits recorded against it.
func TestBenchSetup(t *testing.T) {
	ops := []struct {
		name  string
		call  func(fx *benchFixture, ctx context.Context, org int) error
		batch int
	}{
		{"service/single", func(fx *benchFixture, ctx context.Context, org int) error { return fx.serviceSingle(ctx, org) }, 1},
		{"service/batch", func(fx *benchFixture, ctx context.Context, org int) error { return fx.serviceBatch(ctx, org, 10) }, 10},
		{"raw/single", func(fx *benchFixture, ctx context.Context, org int) error { return fx.rawSingle(ctx, org) }, 1},
		{"raw/batch", func(fx *benchFixture, ctx context.Context, org int) error { return fx.rawBatch(ctx, org, 10) }, 10},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			fx := newBenchFixture(t, 3)
			const perCaller = 5
			perOrg := make([]atomic.Int64, len(fx.orgs))
			var wg sync.WaitGroup
			errs := make(chan error, benchCallers*perCaller)
			for c := 0; c < benchCallers; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < perCaller; k++ {
						org := (c + k) % len(fx.orgs)
						if c == 0 {
							org = 0 // everyone shares org 0 at times: contention on one pool
						}
						if err := op.call(fx, ctx, org); err != nil {
							errs <- err
							continue
						}
						perOrg[org].Add(int64(op.batch))
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("call failed: %v", err)
			}
			fx.verify(t, op.name)
			for i, g := range fx.grants {
				got, err := fx.db.Client.Grant.Get(ctx, g)
				if err != nil {
					t.Fatal(err)
				}
				want := decimal.NewFromInt(benchGrant - benchWeight*perOrg[i].Load())
				if !got.Remaining.Equal(want) {
					t.Errorf("grant %d: remaining %s, want %s", g, got.Remaining, want)
				}
			}
			var n int
			if err := fx.db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM usage_events`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if want := benchCallers * perCaller * op.batch; n != want {
				t.Errorf("%d usage events, want %d", n, want)
			}
		})
	}
}
