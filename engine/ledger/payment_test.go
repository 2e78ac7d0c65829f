package ledger_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// pendingPurchase subscribes the fixture to the on-demand plan (100
// included credits) and buys credits that wait for payment.
func (f *fixture) pendingPurchase(t *testing.T, credits string) *ent.Grant {
	t.Helper()
	f.onDemand(t, "1")
	g, err := f.svc.PurchaseCredits(context.Background(), ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d(credits), PendingPayment: true})
	if err != nil {
		t.Fatal(err)
	}
	if g.Payment != credit.PaymentPending || !g.Remaining.IsZero() || g.PaymentDueAt == nil || !g.PaymentDueAt.Equal(f.clock.now().Add(ledger.DefaultPaymentWindow)) {
		t.Fatalf("pending purchase %+v; want PENDING, remaining 0, due in the payment window", g)
	}
	return g
}

// entriesOf is the ledger entries on grant g.
func (f *fixture) entriesOf(t *testing.T, g *ent.Grant) []*ent.LedgerEntry {
	t.Helper()
	es, err := f.db.Client.LedgerEntry.Query().Where(ledgerentry.GrantID(g.ID)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// Pending credits are billed, shown as pending and never drawn; confirming
// the payment makes them arrive, once.
func TestPendingPurchaseConfirmed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		g := f.pendingPurchase(t, "50")
		b, err := f.svc.Balance(ctx, f.pool)
		if err != nil || !b.Pending.Equal(d("50")) || !b.Available.Equal(d("101")) {
			t.Fatalf("balance %+v, %v; want 101 available (100 included + 1 paid), 50 pending", b, err)
		}
		if es := f.entriesOf(t, g); len(es) != 0 {
			t.Fatalf("a pending grant has entries %v", es)
		}
		if res := f.use(t, "big", "120"); res.Decision != credit.DecisionDenied {
			t.Fatalf("usage past the paid credits: %s, want DENIED (pending credits are never drawn)", res.Decision)
		}
		if n, err := f.db.Client.Charge.Query().Where(charge.GrantID(g.ID)).Count(ctx); err != nil || n != 1 {
			t.Fatalf("%d charges for the pending purchase (%v); want its one ON_DEMAND charge", n, err)
		}
		for range 2 { // the second confirmation changes nothing
			if g, err = f.svc.ConfirmPayment(ctx, ledger.PaymentInput{GrantID: g.ID}); err != nil || g.Payment != credit.PaymentPaid || !g.Remaining.Equal(d("50")) {
				t.Fatalf("confirm = %+v, %v; want PAID with 50", g, err)
			}
		}
		if es := f.entriesOf(t, g); len(es) != 1 || es[0].Kind != credit.EntryGrant || !es[0].Amount.Equal(d("50")) {
			t.Fatalf("entries after confirmation %v; want one GRANT of 50", es)
		}
		if res := f.use(t, "big2", "120"); res.Decision != credit.DecisionAllowed {
			t.Fatalf("usage after confirmation: %s, want ALLOWED", res.Decision)
		}
		if _, err := f.svc.FailPayment(ctx, ledger.PaymentInput{GrantID: g.ID, Reason: "chargeback"}); credit.CodeOf(err) != credit.CodeConflict {
			t.Fatalf("fail a paid grant: %v, want CONFLICT", err)
		}
		verify(t, f.svc)
	})
}

// A failed payment reverses the charge and the credits never arrive; the
// scheduler fails what is unpaid past the payment window.
func TestPendingPurchaseFailed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		g := f.pendingPurchase(t, "50")
		late, err := f.svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d("30"), PendingPayment: true})
		if err != nil {
			t.Fatal(err)
		}
		if g, err = f.svc.FailPayment(ctx, ledger.PaymentInput{GrantID: g.ID, Reason: "card declined"}); err != nil || g.Payment != credit.PaymentFailed {
			t.Fatalf("fail = %+v, %v; want FAILED", g, err)
		}
		if back := f.moneyBack(t, g); len(back) != 1 || !back[0].Amount.Equal(d("-1")) || back[0].Kind != "ON_DEMAND" {
			t.Fatalf("reversal %v; want one ON_DEMAND charge of -1 (50 at 0.02)", back)
		}
		if _, err := f.svc.FailPayment(ctx, ledger.PaymentInput{GrantID: g.ID, Reason: "again"}); err != nil || len(f.moneyBack(t, g)) != 1 {
			t.Fatalf("second fail: %v; want no second reversal", err)
		}
		missing := 999999
		for _, tc := range []struct {
			name string
			do   func() error
			code credit.Code
		}{
			{"confirm a failed payment", func() error { _, err := f.svc.ConfirmPayment(ctx, ledger.PaymentInput{GrantID: g.ID}); return err }, credit.CodeConflict},
			{"refund a failed grant", func() error { _, err := f.svc.Refund(ctx, refundGrant(g, "")); return err }, credit.CodeNotRefundable},
			{"void a pending grant", func() error {
				_, err := f.svc.VoidGrant(ctx, ledger.VoidInput{GrantID: late.ID, Reason: "x"})
				return err
			}, credit.CodeConflict},
			{"refund a pending grant", func() error { _, err := f.svc.Refund(ctx, refundGrant(late, "")); return err }, credit.CodeNotRefundable},
			{"fail without a reason", func() error { _, err := f.svc.FailPayment(ctx, ledger.PaymentInput{GrantID: late.ID}); return err }, credit.CodeValidation},
			{"confirm an unknown grant", func() error { _, err := f.svc.ConfirmPayment(ctx, ledger.PaymentInput{GrantID: missing}); return err }, credit.CodeNotFound},
		} {
			if err := tc.do(); credit.CodeOf(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		if n, err := f.svc.FailUnpaid(ctx, f.clock.now()); err != nil || n != 0 {
			t.Fatalf("FailUnpaid inside the window = %d, %v; want 0", n, err)
		}
		f.clock.add(ledger.DefaultPaymentWindow + time.Minute)
		for want := 1; want >= 0; want-- { // the second run finds nothing
			if n, err := f.svc.FailUnpaid(ctx, f.clock.now()); err != nil || n != want {
				t.Fatalf("FailUnpaid past the window = %d, %v; want %d", n, err, want)
			}
		}
		if back := f.moneyBack(t, late); len(back) != 1 || !back[0].Amount.Equal(d("-0.6")) {
			t.Fatalf("reversal of the unpaid purchase %v; want -0.6", back)
		}
		if b, err := f.svc.Balance(ctx, f.pool); err != nil || !b.Pending.IsZero() {
			t.Fatalf("balance %+v, %v; want nothing pending", b, err)
		}
		verify(t, f.svc)
	})
}

// Confirmations and failures racing on one grant: exactly one wins, the
// other sees it; the ledger stays consistent.
func TestConfirmRacesFail(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		g := f.pendingPurchase(t, "50")
		var wg sync.WaitGroup
		results := make([]credit.Payment, 6)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out *ent.Grant
				var err error
				if i%2 == 0 {
					out, err = f.svc.ConfirmPayment(ctx, ledger.PaymentInput{GrantID: g.ID})
				} else {
					out, err = f.svc.FailPayment(ctx, ledger.PaymentInput{GrantID: g.ID, Reason: "declined"})
				}
				switch {
				case err == nil:
					results[i] = out.Payment
				case credit.CodeOf(err) != credit.CodeConflict:
					t.Errorf("racer %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		final, err := f.db.Client.Grant.Get(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			if r != "" && r != final.Payment {
				t.Errorf("racer %d saw %s, the grant ended %s", i, r, final.Payment)
			}
		}
		want := 0
		if final.Payment == credit.PaymentFailed {
			want = 1
		}
		if n := len(f.moneyBack(t, g)); n != want {
			t.Errorf("%d reversals for a grant that ended %s", n, final.Payment)
		}
		verify(t, f.svc)
	})
}
