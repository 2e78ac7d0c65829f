package ledger_test

import (
	"context"
	"sync"
	"testing"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// grantCredits, purchaseCredits and transferCredits with an idempotency key
// happen once: retries (also concurrent ones) return the first result and
// write nothing; another payload under the key is IDEMPOTENCY_CONFLICT.
func TestMoneyMutationsAreIdempotent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		p := plan("od", credit.OverageHard, credit.RolloverNone, nil)
		p.OnDemandPrice = dp("0.02")
		f.subscribe(t, p)
		team, _, _ := f.tree(t)
		counts := func() [3]int {
			g, _ := db.Client.Grant.Query().Count(ctx)
			e, _ := db.Client.LedgerEntry.Query().Count(ctx)
			c, _ := db.Client.Charge.Query().Count(ctx)
			return [3]int{g, e, c}
		}

		// Concurrent retries of one purchase buy once.
		var wg sync.WaitGroup
		bought := make([]*ent.Grant, 6)
		for i := range bought {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				g, err := f.svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d("50"), IdempotencyKey: "buy-1"})
				if err != nil {
					t.Errorf("purchase %d: %v", i, err)
				}
				bought[i] = g
			}(i)
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for _, g := range bought {
			if g.ID != bought[0].ID {
				t.Fatalf("retried purchases made grants %d and %d, want one", bought[0].ID, g.ID)
			}
		}
		if got := f.available(t); !got.Equal(d("150")) {
			t.Fatalf("available %s after one purchase of 50 (and 100 included), want 150", got)
		}
		before := counts()
		if _, err := f.svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d("60"), IdempotencyKey: "buy-1"}); credit.CodeOf(err) != credit.CodeIdempotencyConflict {
			t.Fatalf("the key with another amount: %v, want IDEMPOTENCY_CONFLICT", err)
		}
		g1, err := f.svc.GrantCredits(ctx, ledger.GrantInput{PoolID: f.pool.ID, CreditType: credit.CreditPromotional, Amount: d("5"), IdempotencyKey: "promo"})
		if err != nil {
			t.Fatal(err)
		}
		g2, err := f.svc.GrantCredits(ctx, ledger.GrantInput{PoolID: f.pool.ID, CreditType: credit.CreditPromotional, Amount: d("5"), IdempotencyKey: "promo"})
		if err != nil || g2.ID != g1.ID {
			t.Fatalf("retried grant = %v, %v; want grant %d again", g2, err, g1.ID)
		}
		if _, err := f.svc.GrantCredits(ctx, ledger.GrantInput{PoolID: f.pool.ID, CreditType: credit.CreditPromotional, Amount: d("5"), IdempotencyKey: "buy-1"}); credit.CodeOf(err) != credit.CodeIdempotencyConflict {
			t.Fatalf("a purchase's key for a grant: %v, want IDEMPOTENCY_CONFLICT", err)
		}
		in := ledger.TransferInput{FromPoolID: f.pool.ID, ToPoolID: team.ID, Amount: d("20"), IdempotencyKey: "move-1"}
		first, err := f.svc.TransferCredits(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := f.svc.TransferCredits(ctx, in)
		if err != nil || len(again) != len(first) || again[0].ID != first[0].ID {
			t.Fatalf("retried transfer = %v, %v; want the first entries %v", again, err, first)
		}
		after := counts()
		if want := [3]int{before[0] + 1 + 1, before[1] + 1 + 2, before[2]}; after != want { // one grant, one transfer (1 out, 1 in)
			t.Fatalf("rows (grants, entries, charges) = %v, want %v", after, want)
		}
		if _, err := f.svc.TransferCredits(ctx, ledger.TransferInput{FromPoolID: f.pool.ID, ToPoolID: team.ID, Amount: d("20"), IdempotencyKey: string([]byte{0xff})}); credit.CodeOf(err) != credit.CodeValidation {
			t.Fatalf("a key that is not UTF-8: %v, want VALIDATION", err)
		}
		verify(t, f.svc)
	})
}
