package ledger_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// The model test drives the ledger with random operations from many
// goroutines and checks every answer against a simple reference model of
// the rules: per organisation, the credits available and reserved, what a
// burn costs (default burn policy, HARD ceiling), what a run holds, and that
// a replayed key answers its first result. Each goroutine owns one
// organisation, so its model is exact while the goroutines race each other
// on the database (and one goroutine keeps publishing register versions, so
// the catalog changes under them). It ends with Verify.
//
// Seeded and reproducible: CREDITD_MODEL_SEED=N replays a run; the seed is
// printed on failure. CREDITD_SOAK=1 (make soak) runs a long one.

type model struct {
	avail, reserved decimal.Decimal
	holds           map[string]decimal.Decimal // run id -> held credits
	results         map[string]ledger.UsageResult
	inputs          map[string]engine.UsageInput
	keys            []string
}

func TestModel(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CREDITD_MODEL_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	workers, ops := 8, 60
	if os.Getenv("CREDITD_SOAK") != "" {
		workers, ops = 16, 2000
	}
	t.Logf("model seed %d (CREDITD_MODEL_SEED=%d replays it): %d goroutines x %d operations", seed, seed, workers, ops)
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		var total atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers+1)
		stop := make(chan struct{})
		// The catalog changes under the workers: same weights, new versions.
		go func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				r, err := f.svc.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: d("1")}, {Action: "big.run", Credits: d("10")}})
				if err == nil {
					_, err = f.svc.PublishRegister(ctx, "default", r.Version, nil)
				}
				if err != nil && engine.CodeOf(err) != engine.CodeConflict {
					errs <- fmt.Errorf("publish: %w", err)
					return
				}
				total.Add(1)
			}
		}()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(seed + int64(w)))
				if err := runModel(ctx, f, db, rng, w, ops, &total); err != nil {
					errs <- fmt.Errorf("seed %d, worker %d: %w", seed, w, err)
				}
			}(w)
		}
		wg.Wait()
		close(stop)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("%d operations checked against the model", total.Load())
		verify(t, f.svc)
	})
}

func runModel(ctx context.Context, f *fixture, db *store.DB, rng *rand.Rand, w, ops int, total *atomic.Int64) error {
	org, err := f.svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: fmt.Sprintf("model-%d", w)})
	if err != nil {
		return err
	}
	pool, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: org.ID, Kind: engine.PoolAccount, Name: "main"})
	if err != nil {
		return err
	}
	m := &model{avail: decimal.Zero, reserved: decimal.Zero, holds: map[string]decimal.Decimal{},
		results: map[string]ledger.UsageResult{}, inputs: map[string]engine.UsageInput{}}
	weights := map[string]decimal.Decimal{"agent.run": d("1"), "big.run": d("10")}
	cost := func(in engine.UsageInput) decimal.Decimal {
		q, c := decimal.NewFromInt(1), decimal.NewFromInt(1)
		if in.Quantity != nil {
			q = *in.Quantity
		}
		if in.Completion != nil {
			c = *in.Completion
		}
		switch in.Status {
		case engine.StatusSucceeded:
			return weights[in.Action].Mul(q)
		case engine.StatusPartial:
			return weights[in.Action].Mul(q).Mul(c)
		}
		return decimal.Zero
	}
	n := 0
	next := func() string { n++; return fmt.Sprintf("w%d-k%d", w, n) }
	usage := func(key, action string, status engine.UsageStatus, qty string) engine.UsageInput {
		return engine.UsageInput{IdempotencyKey: key, OrganizationID: org.ID, Action: action, Status: status, Quantity: dp(qty)}
	}
	for op := 0; op < ops; op++ {
		total.Add(1)
		switch r := rng.Intn(100); {
		case r < 15: // grant
			amount := decimal.NewFromInt(int64(rng.Intn(40) + 1)).Div(decimal.NewFromInt(4))
			if _, err := f.svc.GrantCredits(ctx, ledger.GrantInput{PoolID: pool.ID, CreditType: engine.CreditSubscription, Amount: amount}); err != nil {
				return err
			}
			m.avail = m.avail.Add(amount)
		case r < 55: // burn, any status
			statuses := []engine.UsageStatus{engine.StatusSucceeded, engine.StatusSucceeded, engine.StatusFailed, engine.StatusPartial}
			in := usage(next(), []string{"agent.run", "big.run"}[rng.Intn(2)], statuses[rng.Intn(4)], strconv.Itoa(rng.Intn(5)+1))
			if in.Status == engine.StatusPartial {
				in.Completion = dp(fmt.Sprintf("0.%d", rng.Intn(10)))
			}
			res, err := f.svc.RecordUsage(ctx, in)
			if err != nil {
				return err
			}
			want := cost(in)
			if want.GreaterThan(m.avail) {
				if res.Decision != engine.DecisionDenied {
					return fmt.Errorf("op %d: burn of %s with %s available = %s, model says DENIED", op, want, m.avail, res.Decision)
				}
			} else {
				if res.Decision != engine.DecisionAllowed || !res.Credits.Equal(want) {
					return fmt.Errorf("op %d: burn of %s with %s available = %s %s, model says ALLOWED %s", op, want, m.avail, res.Decision, res.Credits, want)
				}
				m.avail = m.avail.Sub(want)
			}
			m.results[in.IdempotencyKey], m.inputs[in.IdempotencyKey] = res, in
			m.keys = append(m.keys, in.IdempotencyKey)
		case r < 65: // replay a key: its first result, nothing written
			if len(m.keys) == 0 {
				continue
			}
			key := m.keys[rng.Intn(len(m.keys))]
			res, err := f.svc.RecordUsage(ctx, m.inputs[key])
			if err != nil {
				return err
			}
			first := m.results[key]
			if !res.Duplicate || res.Event.ID != first.Event.ID || !res.Credits.Equal(first.Credits) || res.Decision != first.Decision {
				return fmt.Errorf("op %d: replay of %s = %+v, first was %+v", op, key, res, first)
			}
		case r < 80: // a run starts
			run := next()
			in := usage(run+"-start", "agent.run", engine.StatusStarted, strconv.Itoa(rng.Intn(4)+1))
			in.RunID = run
			res, err := f.svc.RecordUsage(ctx, in)
			if err != nil {
				return err
			}
			hold := weights["agent.run"].Mul(*in.Quantity)
			if hold.GreaterThan(m.avail) {
				if res.Decision != engine.DecisionDenied {
					return fmt.Errorf("op %d: run holding %s with %s available = %s, model says DENIED", op, hold, m.avail, res.Decision)
				}
				continue
			}
			if res.Decision != engine.DecisionAllowed || !res.Reserved.Equal(hold) {
				return fmt.Errorf("op %d: run start = %s reserved %s, model says ALLOWED reserving %s", op, res.Decision, res.Reserved, hold)
			}
			m.avail, m.reserved = m.avail.Sub(hold), m.reserved.Add(hold)
			m.holds[run] = hold
		case r < 92: // a run ends
			var run string
			for k := range m.holds {
				run = k
				break
			}
			if run == "" {
				continue
			}
			hold := m.holds[run]
			statuses := []engine.UsageStatus{engine.StatusSucceeded, engine.StatusFailed, engine.StatusPartial}
			in := usage(run+"-end", "agent.run", statuses[rng.Intn(3)], hold.String())
			in.RunID = run
			if in.Status == engine.StatusPartial {
				in.Completion = dp("0.5")
			}
			res, err := f.svc.RecordUsage(ctx, in)
			if err != nil {
				return err
			}
			want := cost(in)
			m.avail, m.reserved = m.avail.Add(hold), m.reserved.Sub(hold)
			delete(m.holds, run)
			if res.Decision != engine.DecisionAllowed || !res.Credits.Equal(want) {
				return fmt.Errorf("op %d: run end = %s %s, model says ALLOWED %s", op, res.Decision, res.Credits, want)
			}
			m.avail = m.avail.Sub(want)
		default: // read the balance
			b, err := f.svc.Balance(ctx, pool)
			if err != nil {
				return err
			}
			if !b.Available.Equal(m.avail) || !b.Reserved.Equal(m.reserved) {
				return fmt.Errorf("op %d: balance %s available, %s reserved; model says %s and %s", op, b.Available, b.Reserved, m.avail, m.reserved)
			}
		}
	}
	b, err := f.svc.Balance(ctx, &ent.Pool{ID: pool.ID, OrganizationID: org.ID})
	if err != nil {
		return err
	}
	if !b.Available.Equal(m.avail) || !b.Reserved.Equal(m.reserved) {
		return fmt.Errorf("final balance %s available, %s reserved; model says %s and %s", b.Available, b.Reserved, m.avail, m.reserved)
	}
	return nil
}
