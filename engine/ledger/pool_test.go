package ledger_test

import (
	"context"
	"fmt"
	"sync"
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

// TestPoolSmallerThanCallers: many concurrent callers on the same pool of
// credits through a PostgreSQL pool of two connections, on a Service that
// has prepared nothing yet. A transaction that needs a second connection
// (to prepare a statement) while every connection is held by transactions
// queued behind its row lock would wait for ever; the ledger keeps one
// connection out of transactions' reach so it cannot.
func TestPoolSmallerThanCallers(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenWith(t, dialect.Postgres, store.Options{MaxConns: 2})
	setup := ledger.New(db)
	org, err := setup.CreateOrganization(ctx, ledger.OrganizationInput{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := setup.CreatePool(ctx, ledger.PoolInput{OrganizationID: org.ID, Kind: credit.PoolAccount, Name: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.GrantCredits(ctx, ledger.GrantInput{PoolID: pool.ID, CreditType: credit.CreditOnDemand, Amount: decimal.NewFromInt(1000)}); err != nil {
		t.Fatal(err)
	}
	reg, err := setup.SaveRegisterDraft(ctx, "default", []ledger.WeightInput{{Action: "agent.run", Credits: decimal.NewFromInt(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.PublishRegister(ctx, "default", reg.Version, nil); err != nil {
		t.Fatal(err)
	}

	svc := ledger.New(db) // fresh: no statement prepared yet
	const callers = 12
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			// Generous: a stall, not slowness, is what this catches.
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			_, err := svc.RecordUsage(ctx, engine.UsageInput{IdempotencyKey: fmt.Sprintf("k%d", i), OrganizationID: org.ID,
				Action: "agent.run", Status: credit.StatusSucceeded})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("RecordUsage with %d callers on a pool of 2: %v", callers, err)
		}
	}
}
