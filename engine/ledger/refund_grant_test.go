package ledger_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// onDemand subscribes the fixture's organisation to a plan selling
// on-demand credits at 0.02 and buys credits.
func (f *fixture) onDemand(t *testing.T, credits string) *ent.Grant {
	t.Helper()
	p := plan("od", credit.OverageHard, credit.RolloverNone, nil)
	p.OnDemandPrice = dp("0.02")
	f.subscribe(t, p)
	g, err := f.svc.PurchaseCredits(context.Background(), ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d(credits)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func refundGrant(g *ent.Grant, amount string) ledger.RefundInput {
	in := ledger.RefundInput{GrantID: &g.ID, Reason: "bought too many"}
	if amount != "" {
		in.Amount = dp(amount)
	}
	return in
}

// moneyBack is what negative charges gave back of the grant's purchase.
func (f *fixture) moneyBack(t *testing.T, g *ent.Grant) []*ent.Charge {
	t.Helper()
	chs, err := f.db.Client.Charge.Query().Where(charge.GrantID(g.ID), charge.RefundOfNotNil()).Order(ent.Asc(charge.FieldID)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return chs
}

// Unused purchased credits refund in money within the policy's window, at
// the policy's factor; never more than is unused; the default refunds no
// money; what is not ON_DEMAND or SUBSCRIPTION does not refund.
func TestRefundPurchase(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		g := f.onDemand(t, "100")
		f.use(t, "a", "30")
		if _, err := f.svc.Refund(ctx, refundGrant(g, "")); credit.CodeOf(err) != credit.CodeRefundForbidden {
			t.Fatalf("money without a policy: %v, want REFUND_FORBIDDEN", err)
		}
		f.publish(t, "window", credit.PolicyRefund, `subject == "GRANT" && ageHours <= decimal(14 * 24)
  ? {"form": "MONEY", "factor": ageHours <= decimal(24) ? decimal(1) : decimal("0.5")}
  : {"amount": decimal(0)}`)
		es, err := f.svc.Refund(ctx, refundGrant(g, "20"))
		if err != nil || len(es) != 1 || es[0].Kind != credit.EntryRefund || !es[0].Amount.Equal(d("-20")) {
			t.Fatalf("refund of 20 = %v, %v; want one REFUND of -20", es, err)
		}
		f.clock.add(48 * time.Hour)
		if _, err := f.svc.Refund(ctx, refundGrant(g, "")); err != nil { // the other 80 (usage drew the plan's included credits first), at half price
			t.Fatal(err)
		}
		back := f.moneyBack(t, g)
		if len(back) != 2 || !back[0].Amount.Equal(d("-0.4")) || !back[1].Amount.Equal(d("-0.8")) || back[0].Kind != "ON_DEMAND" || !back[1].Credits.Equal(d("-80")) {
			t.Fatalf("money back %v; want -0.4 (20 at 0.02) and -0.8 (80 at 0.02 x 0.5), ON_DEMAND", back)
		}
		missing := 999999
		for _, tc := range []struct {
			name string
			in   ledger.RefundInput
			code credit.Code
		}{
			{"nothing unused", refundGrant(g, "1"), credit.CodeNotRefundable},
			{"an unknown grant", ledger.RefundInput{GrantID: &missing, Reason: "x"}, credit.CodeNotFound},
			{"a promotional grant", refundGrant(f.grant(t, "5", credit.CreditPromotional), ""), credit.CodeNotRefundable},
		} {
			if _, err := f.svc.Refund(ctx, tc.in); credit.CodeOf(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		g2, err := f.svc.PurchaseCredits(ctx, ledger.PurchaseInput{PoolID: f.pool.ID, Credits: d("10")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Refund(ctx, refundGrant(g2, "11")); credit.CodeOf(err) != credit.CodeRefundExceeded {
			t.Fatalf("more than unused: %v, want REFUND_EXCEEDED", err)
		}
		f.clock.add(15 * 24 * time.Hour)
		if _, err := f.svc.Refund(ctx, refundGrant(g2, "")); credit.CodeOf(err) != credit.CodeRefundForbidden {
			t.Fatalf("outside the window: %v, want REFUND_FORBIDDEN", err)
		}
		verify(t, f.svc)
	})
}

// Credits-only refunds: SERVICE credits without expiry, no money; the
// default lets an OPERATOR do it and nobody else.
func TestRefundPurchaseAsService(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		g := f.onDemand(t, "10")
		admin := auth.With(ctx, &auth.Principal{KeyID: 1, Name: "admin", Role: credit.RoleOrgAdmin, OrgID: &f.org.ID})
		in := refundGrant(g, "4")
		in.AsService = true
		if _, err := f.svc.Refund(admin, in); credit.CodeOf(err) != credit.CodeRefundForbidden {
			t.Fatalf("an ORG_ADMIN without a policy: %v, want REFUND_FORBIDDEN", err)
		}
		es, err := f.svc.Refund(ctx, in)
		if err != nil || len(es) != 2 || !es[0].Amount.Equal(d("-4")) || es[1].Kind != credit.EntryGrant || !es[1].Amount.Equal(d("4")) {
			t.Fatalf("as SERVICE = %v, %v; want REFUND -4 and a GRANT of 4", es, err)
		}
		sg, err := f.db.Client.Grant.Get(ctx, *es[1].GrantID)
		if err != nil || sg.CreditType != credit.CreditService || sg.ExpiresAt != nil {
			t.Fatalf("SERVICE grant %v, %v", sg, err)
		}
		if back := f.moneyBack(t, g); len(back) != 0 {
			t.Fatalf("money moved: %v", back)
		}
		if got := f.available(t); !got.Equal(d("110")) { // the plan's 100 and the 10 bought, 4 of them now SERVICE
			t.Fatalf("available %s, want 110", got)
		}
		verify(t, f.svc)
	})
}

// Concurrent refunds of one grant never refund more than is unused, and a
// retry with the key refunds once.
func TestConcurrentGrantRefunds(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		g := f.onDemand(t, "10")
		f.publish(t, "money", credit.PolicyRefund, `{"form": "MONEY"}`)
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.svc.Refund(ctx, refundGrant(g, "3"))
				switch {
				case err == nil:
					ok.Add(1)
				case credit.CodeOf(err) == credit.CodeRefundExceeded, credit.CodeOf(err) == credit.CodeNotRefundable:
					refused.Add(1)
				default:
					t.Errorf("refund: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 3 || refused.Load() != 3 {
			t.Fatalf("%d refunds of 3 went through, %d refused; want 3 and 3 (10 bought)", ok.Load(), refused.Load())
		}
		keyed := refundGrant(g, "1")
		keyed.IdempotencyKey = "r-1"
		a, err := f.svc.Refund(ctx, keyed)
		b, err2 := f.svc.Refund(ctx, keyed)
		if err != nil || err2 != nil || len(a) != 1 || len(b) != 1 || a[0].ID != b[0].ID {
			t.Fatalf("keyed retry = %v, %v / %v, %v; want the same entry", a, err, b, err2)
		}
		back := f.moneyBack(t, g)
		total := d("0")
		for _, ch := range back {
			total = total.Sub(ch.Amount)
		}
		if len(back) != 4 || !total.Equal(d("0.2")) {
			t.Fatalf("money back %v (%s); want 4 charges, 0.2 in all", back, total)
		}
		verify(t, f.svc)
	})
}
