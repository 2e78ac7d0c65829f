package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/ent/schema"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	svc   *ledger.Service
	clock *clock
	org   *ent.Organization
	pool  *ent.Pool
	db    *store.DB
}

// setup creates an organisation with an ACCOUNT pool, and publishes the
// "default" register (agent.run = 1 credit, big.run = 10 credits).
func setup(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	svc := ledger.New(db, ledger.WithClock(c.now))
	org, err := svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "Acme", Segment: "smb"})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: org.ID, Kind: credit.PoolAccount, Name: "main"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{
		{Action: "agent.run", Credits: d("1")}, {Action: "big.run", Credits: d("10")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PublishRegister(ctx, "default", reg.Version, nil); err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, clock: c, org: org, pool: pool, db: db}
}

func (f *fixture) grant(t *testing.T, amount string, typ credit.CreditType) *ent.Grant {
	t.Helper()
	g, err := f.svc.GrantCredits(context.Background(), ledger.GrantInput{PoolID: f.pool.ID, CreditType: typ, Amount: d(amount)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (f *fixture) usage(key, action string) engine.UsageInput {
	return engine.UsageInput{IdempotencyKey: key, OrganizationID: f.org.ID, Action: action, Status: credit.StatusSucceeded}
}

func verify(t *testing.T, svc *ledger.Service) {
	t.Helper()
	vs, err := svc.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Errorf("invariant broken: %s", v)
	}
}

func (f *fixture) available(t *testing.T) decimal.Decimal {
	t.Helper()
	b, err := f.svc.Balance(context.Background(), f.pool)
	if err != nil {
		t.Fatal(err)
	}
	return b.Available
}

func TestConcurrentBurnsNeverOverdraw(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.grant(t, "60", credit.CreditSubscription)
		f.grant(t, "40.5", credit.CreditOnDemand)
		const workers, each = 24, 10 // 240 one-credit events against 100.5 credits
		var allowed, denied atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					res, err := f.svc.RecordUsage(context.Background(), f.usage(fmt.Sprintf("w%d-%d", w, i), "agent.run"))
					if err != nil {
						errs <- err
						return
					}
					switch res.Decision {
					case credit.DecisionAllowed:
						allowed.Add(1)
					case credit.DecisionDenied:
						denied.Add(1)
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("RecordUsage: %v", err)
		}
		if allowed.Load() != 100 || denied.Load() != workers*each-100 {
			t.Fatalf("allowed %d, denied %d; want 100 and %d", allowed.Load(), denied.Load(), workers*each-100)
		}
		if got := f.available(t); !got.Equal(d("0.5")) {
			t.Fatalf("available = %s, want 0.5", got)
		}
		verify(t, f.svc)
	})
}

func TestConcurrentReplaysChargeOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.grant(t, "100", credit.CreditSubscription)
		const workers = 32
		results := make([]ledger.UsageResult, workers)
		var wg sync.WaitGroup
		var failed atomic.Value
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				res, err := f.svc.RecordUsage(context.Background(), f.usage("same-key", "big.run"))
				if err != nil {
					failed.Store(err)
				}
				results[w] = res
			}(w)
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			t.Fatalf("RecordUsage: %v", err)
		}
		firsts := 0
		for _, r := range results {
			if !r.Duplicate {
				firsts++
			}
			if r.Event.ID != results[0].Event.ID || !r.Credits.Equal(d("10")) || len(r.Draws) != 1 {
				t.Fatalf("replay result %+v differs from first %+v", r, results[0])
			}
		}
		if firsts != 1 {
			t.Fatalf("%d results were first-time, want exactly 1", firsts)
		}
		burns, err := db.Client.LedgerEntry.Query().Where(ledgerentry.KindEQ(credit.EntryBurn)).Count(context.Background())
		if err != nil || burns != 1 {
			t.Fatalf("BURN entries = %d (%v), want 1", burns, err)
		}
		if got := f.available(t); !got.Equal(d("90")) {
			t.Fatalf("available = %s, want 90", got)
		}
		verify(t, f.svc)
	})
}

// Batches from several goroutines share keys in different orders: every key
// is charged once, and no transaction deadlocks for good.
func TestConcurrentOverlappingBatches(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.grant(t, "1000", credit.CreditSubscription)
		const workers, keys = 8, 40
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				batch := make([]engine.UsageInput, keys)
				for i := range batch {
					k := i
					if w%2 == 1 {
						k = keys - 1 - i // reverse order on odd workers
					}
					batch[i] = f.usage(fmt.Sprintf("k%d", k), "agent.run")
				}
				if _, err := f.svc.RecordUsageBatch(context.Background(), batch); err != nil {
					errs <- err
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("RecordUsageBatch: %v", err)
		}
		if got := f.available(t); !got.Equal(d("960")) {
			t.Fatalf("available = %s, want 960 (each of %d keys charged once)", got, keys)
		}
		verify(t, f.svc)
	})
}

func TestIdempotencyConflictWritesNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.grant(t, "100", credit.CreditSubscription)
		ctx := context.Background()
		if _, err := f.svc.RecordUsage(ctx, f.usage("k", "agent.run")); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.RecordUsage(ctx, f.usage("k", "big.run"))
		if credit.CodeOf(err) != credit.CodeIdempotencyConflict {
			t.Fatalf("reused key with another payload: err = %v, want IDEMPOTENCY_CONFLICT", err)
		}
		// The batch path, where the first attempt is optimistic, too.
		_, err = f.svc.RecordUsageBatch(ctx, []engine.UsageInput{f.usage("new", "agent.run"), f.usage("k", "big.run")})
		var e *credit.Error
		if !errors.As(err, &e) || e.Code != credit.CodeIdempotencyConflict || e.Index == nil || *e.Index != 1 {
			t.Fatalf("batch conflict: err = %v, want IDEMPOTENCY_CONFLICT at index 1", err)
		}
		if got := f.available(t); !got.Equal(d("99")) {
			t.Fatalf("available = %s, want 99", got)
		}
		verify(t, f.svc)
	})
}

func TestRuleRuntimeErrorWritesNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.grant(t, "100", credit.CreditSubscription)
		ctx := context.Background()
		p, err := f.svc.SavePolicyDraft(ctx, ledger.PolicyInput{Name: "per-page", Kind: credit.PolicyBurn,
			Expression: `weight * decimal(event.properties.pages)`})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.PublishPolicy(ctx, p.Name, p.Version, nil); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.RecordUsageBatch(ctx, []engine.UsageInput{
			{IdempotencyKey: "a", OrganizationID: f.org.ID, Action: "agent.run", Properties: map[string]any{"pages": 2.0}},
			f.usage("b", "agent.run"), // no pages: the rule fails
		})
		if credit.CodeOf(err) != credit.CodeRuleRuntime {
			t.Fatalf("err = %v, want RULE_RUNTIME", err)
		}
		n, _ := db.Client.UsageEvent.Query().Count(ctx)
		if n != 0 || !f.available(t).Equal(d("100")) {
			t.Fatalf("after a failed batch: %d events, available %s; want 0 and 100", n, f.available(t))
		}
		verify(t, f.svc)
	})
}

// Versions are chosen by the event time and recorded on every entry.
func TestVersionsInEffectAreRecorded(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.grant(t, "1000", credit.CreditSubscription)
		ctx := context.Background()
		// Register v2 doubles agent.run from tomorrow; a burn policy from now.
		v2, err := f.svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("2")}})
		if err != nil {
			t.Fatal(err)
		}
		tomorrow := f.clock.now().Add(24 * time.Hour)
		if _, err := f.svc.PublishRegister(ctx, "default", v2.Version, &tomorrow); err != nil {
			t.Fatal(err)
		}
		p, err := f.svc.SavePolicyDraft(ctx, ledger.PolicyInput{Name: "triple", Kind: credit.PolicyBurn, Expression: `weight * event.quantity * 3`})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.PublishPolicy(ctx, p.Name, p.Version, nil); err != nil {
			t.Fatal(err)
		}
		today, err := f.svc.RecordUsage(ctx, f.usage("today", "agent.run"))
		if err != nil {
			t.Fatal(err)
		}
		f.clock.add(25 * time.Hour)
		later, err := f.svc.RecordUsage(ctx, f.usage("later", "agent.run"))
		if err != nil {
			t.Fatal(err)
		}
		if !today.Credits.Equal(d("3")) || *today.Event.RegisterVersion != 1 || *today.Event.BurnPolicyVersion != 1 {
			t.Fatalf("today: credits %s, register v%d; want 3 with v1", today.Credits, *today.Event.RegisterVersion)
		}
		if !later.Credits.Equal(d("6")) || *later.Event.RegisterVersion != 2 {
			t.Fatalf("later: credits %s, register v%d; want 6 with v2", later.Credits, *later.Event.RegisterVersion)
		}
		es, err := db.Client.LedgerEntry.Query().Where(ledgerentry.KindEQ(credit.EntryBurn)).Order(ent.Asc(ledgerentry.FieldID)).All(ctx)
		if err != nil || len(es) != 2 {
			t.Fatalf("entries %v, %v", es, err)
		}
		for i, want := range []int{1, 2} {
			e := es[i]
			if *e.RegisterVersion != want || *e.BurnPolicyVersion != 1 || e.UsageEventID == nil || e.DrawPolicyVersion != nil {
				t.Fatalf("entry %d: register v%v policy v%v event %v; want register v%d, policy v1, an event, default draw order",
					i, *e.RegisterVersion, *e.BurnPolicyVersion, e.UsageEventID, want)
			}
		}
		// A usage event dated before v2 took effect is priced by v1.
		back := f.clock.now().Add(-24 * time.Hour)
		old := f.usage("backdated", "agent.run")
		old.OccurredAt = &back
		res, err := f.svc.RecordUsage(ctx, old)
		if err != nil || *res.Event.RegisterVersion != 1 {
			t.Fatalf("backdated event: %+v, %v; want register v1", res.Event, err)
		}
		verify(t, f.svc)
	})
}

func TestLedgerEntriesAreImmutable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		g := f.grant(t, "10", credit.CreditSubscription)
		ctx := context.Background()
		_, err := db.Client.LedgerEntry.Update().Where(ledgerentry.GrantID(g.ID)).Save(ctx)
		if !errors.Is(err, schema.ErrImmutable) {
			t.Fatalf("update of a ledger entry: err = %v, want ErrImmutable", err)
		}
		_, err = db.Client.LedgerEntry.Delete().Exec(ctx)
		if !errors.Is(err, schema.ErrImmutable) {
			t.Fatalf("delete of ledger entries: err = %v, want ErrImmutable", err)
		}
	})
}

func TestGrantsNotEffectiveOrExpiredAreNotDrawn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		ctx := context.Background()
		now := f.clock.now()
		soon, later := now.Add(time.Hour), now.Add(2*time.Hour)
		if _, err := f.svc.GrantCredits(ctx, ledger.GrantInput{PoolID: f.pool.ID, CreditType: credit.CreditPromotional, Amount: d("5"), ExpiresAt: &soon}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.GrantCredits(ctx, ledger.GrantInput{PoolID: f.pool.ID, CreditType: credit.CreditSubscription, Amount: d("5"), EffectiveAt: &later}); err != nil {
			t.Fatal(err)
		}
		res, err := f.svc.RecordUsage(ctx, f.usage("a", "big.run"))
		if err != nil || res.Decision != credit.DecisionDenied {
			t.Fatalf("10 credits from 5 usable: %+v, %v; want DENIED", res, err)
		}
		f.clock.add(90 * time.Minute) // the promotion expired, the subscription is not yet effective
		res, err = f.svc.RecordUsage(ctx, f.usage("b", "agent.run"))
		if err != nil || res.Decision != credit.DecisionDenied {
			t.Fatalf("between expiry and effect: %+v, %v; want DENIED", res, err)
		}
		f.clock.add(time.Hour)
		res, err = f.svc.RecordUsage(ctx, f.usage("c", "agent.run"))
		if err != nil || res.Decision != credit.DecisionAllowed {
			t.Fatalf("after effect: %+v, %v; want ALLOWED", res, err)
		}
		verify(t, f.svc)
	})
}
