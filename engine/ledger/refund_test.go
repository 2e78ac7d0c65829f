package ledger_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/charge"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

func (f *fixture) use(t *testing.T, key, qty string) ledger.UsageResult {
	t.Helper()
	in := f.usage(key, "agent.run")
	in.Quantity = dp(qty)
	return f.record(t, in)
}

func refundOf(ev *ent.UsageEvent, amount string) ledger.RefundInput {
	in := ledger.RefundInput{UsageEventID: &ev.ID, Reason: "the run failed on our side"}
	if amount != "" {
		in.Amount = dp(amount)
	}
	return in
}

func TestRefundUsage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "100", credit.CreditSubscription)
		r := f.use(t, "a", "10")
		es, err := f.svc.Refund(ctx, refundOf(r.Event, "4"))
		if err != nil || len(es) != 1 || es[0].Kind != credit.EntryRefund || !es[0].Amount.Equal(d("4")) || es[0].GrantID == nil {
			t.Fatalf("partial refund = %v, %v; want one REFUND of 4 on the grant", es, err)
		}
		if got := f.available(t); !got.Equal(d("94")) {
			t.Fatalf("available %s, want 94", got)
		}
		for _, tc := range []struct {
			name string
			in   ledger.RefundInput
			code credit.Code
		}{
			{"more than is left", refundOf(r.Event, "7"), credit.CodeRefundExceeded},
			{"no reason", ledger.RefundInput{UsageEventID: &r.Event.ID}, credit.CodeValidation},
			{"a negative amount", refundOf(r.Event, "-1"), credit.CodeValidation},
			{"both an event and a grant", ledger.RefundInput{UsageEventID: &r.Event.ID, GrantID: &r.Event.ID, Reason: "x"}, credit.CodeValidation},
		} {
			if _, err := f.svc.Refund(ctx, tc.in); credit.CodeOf(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		if _, err := f.svc.Refund(ctx, refundOf(r.Event, "")); err != nil { // the rest: 6
			t.Fatal(err)
		}
		if _, err := f.svc.Refund(ctx, refundOf(r.Event, "")); credit.CodeOf(err) != credit.CodeNotRefundable {
			t.Fatalf("refunded in full, again: %v, want NOT_REFUNDABLE", err)
		}
		denied := f.use(t, "big", "1000")
		if _, err := f.svc.Refund(ctx, refundOf(denied.Event, "")); credit.CodeOf(err) != credit.CodeNotRefundable {
			t.Fatalf("a denied event: %v, want NOT_REFUNDABLE", err)
		}
		if got := f.available(t); !got.Equal(d("100")) {
			t.Fatalf("available %s, want 100", got)
		}
		// As SERVICE credits.
		s := f.use(t, "b", "5")
		in := refundOf(s.Event, "")
		in.AsService = true
		es, err = f.svc.Refund(ctx, in)
		if err != nil || len(es) != 1 || es[0].Kind != credit.EntryGrant {
			t.Fatalf("refund as service credits = %v, %v; want one new grant", es, err)
		}
		if g, _ := db.Client.Grant.Get(ctx, *es[0].GrantID); g.CreditType != credit.CreditService || !g.Amount.Equal(d("5")) {
			t.Fatalf("service grant = %v, want 5 SERVICE credits", g)
		}
		verify(t, f.svc)
	})
}

// A refund after the grant expired gives the credits to a successor grant
// of the same type, lasting as long as the original.
func TestRefundToAnExpiredGrant(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		exp := f.clock.now().Add(time.Hour)
		if _, err := f.svc.GrantCredits(ctx, ledger.GrantInput{PoolID: f.pool.ID, CreditType: credit.CreditPromotional, Amount: d("10"), ExpiresAt: &exp}); err != nil {
			t.Fatal(err)
		}
		r := f.use(t, "a", "6")
		f.clock.add(2 * time.Hour)
		es, err := f.svc.Refund(ctx, refundOf(r.Event, ""))
		if err != nil || len(es) != 1 || es[0].Kind != credit.EntryGrant {
			t.Fatalf("refund = %v, %v; want a successor grant", es, err)
		}
		g, _ := db.Client.Grant.Get(ctx, *es[0].GrantID)
		if g.CreditType != credit.CreditPromotional || !g.Remaining.Equal(d("6")) || g.ExpiresAt == nil || !g.ExpiresAt.Equal(f.clock.now().Add(time.Hour)) {
			t.Fatalf("successor = %v, want 6 PROMOTIONAL credits for an hour", g)
		}
		if got := f.available(t); !got.Equal(d("6")) {
			t.Fatalf("available %s, want 6", got)
		}
		verify(t, f.svc)
	})
}

// A refunded overage nets its OVERAGE charge to zero.
func TestRefundOverage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		p := plan("soft", credit.OverageSoft, credit.RolloverNone, nil)
		p.IncludedCredits = d("10")
		f.subscribe(t, p)
		r := f.use(t, "a", "15")
		if !r.Overage.Equal(d("5")) {
			t.Fatalf("overage %s, want 5", r.Overage)
		}
		if _, err := f.svc.Refund(ctx, refundOf(r.Event, "7")); err != nil { // 5 overage, then 2 of the draws
			t.Fatal(err)
		}
		chs, err := db.Client.Charge.Query().Where(charge.UsageEventID(r.Event.ID)).All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sum, credits := decimal.Zero, decimal.Zero
		for _, c := range chs {
			sum, credits = sum.Add(c.Amount), credits.Add(c.Credits)
		}
		if len(chs) != 2 || !sum.IsZero() || !credits.IsZero() {
			t.Fatalf("charges of the event %v: sum %s credits %s; want the OVERAGE and its reversal, netting to 0", chs, sum, credits)
		}
		if got := f.available(t); !got.Equal(d("2")) {
			t.Fatalf("available %s, want 2", got)
		}
		verify(t, f.svc)
	})
}

// Concurrent refunds of one event never add up to more than it charged.
func TestConcurrentRefunds(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "100", credit.CreditSubscription)
		r := f.use(t, "a", "10")
		var ok, exceeded atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.svc.Refund(ctx, refundOf(r.Event, "3"))
				switch {
				case err == nil:
					ok.Add(1)
				case credit.CodeOf(err) == credit.CodeRefundExceeded:
					exceeded.Add(1)
				default:
					t.Errorf("refund: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 3 || exceeded.Load() != 3 {
			t.Fatalf("%d refunds of 3 went through and %d were refused; want 3 and 3 (10 charged)", ok.Load(), exceeded.Load())
		}
		if got := f.available(t); !got.Equal(d("99")) {
			t.Fatalf("available %s, want 99", got)
		}
		verify(t, f.svc)
	})
}

// A void takes what is left of a grant; what was burned stays burned.
func TestVoidGrant(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		g := f.grant(t, "10", credit.CreditPromotional)
		f.use(t, "a", "3")
		e, err := f.svc.VoidGrant(ctx, ledger.VoidInput{GrantID: g.ID, Reason: "granted twice by mistake", IdempotencyKey: "void-1"})
		if err != nil || e.Kind != credit.EntryVoid || !e.Amount.Equal(d("-7")) {
			t.Fatalf("void = %v, %v; want a VOID of -7", e, err)
		}
		again, err := f.svc.VoidGrant(ctx, ledger.VoidInput{GrantID: g.ID, Reason: "granted twice by mistake", IdempotencyKey: "void-1"})
		if err != nil || again.ID != e.ID {
			t.Fatalf("retried void = %v, %v; want entry %d again", again, err, e.ID)
		}
		if _, err := f.svc.VoidGrant(ctx, ledger.VoidInput{GrantID: g.ID, Reason: "again"}); credit.CodeOf(err) != credit.CodeConflict {
			t.Fatalf("a void of nothing: %v, want CONFLICT", err)
		}
		if _, err := f.svc.VoidGrant(ctx, ledger.VoidInput{GrantID: g.ID}); credit.CodeOf(err) != credit.CodeValidation {
			t.Fatalf("a void without a reason: %v, want VALIDATION", err)
		}
		if got := f.available(t); !got.IsZero() {
			t.Fatalf("available %s, want 0", got)
		}
		verify(t, f.svc)
	})
}

// A REFUND policy decides who may refund how much, and when.
func TestRefundPolicy(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "100", credit.CreditSubscription)
		r := f.use(t, "a", "10")
		admin := auth.With(ctx, &auth.Principal{KeyID: 1, Name: "admin", Role: credit.RoleOrgAdmin, OrgID: &f.org.ID})
		if _, err := f.svc.Refund(admin, refundOf(r.Event, "1")); credit.CodeOf(err) != credit.CodeRefundForbidden {
			t.Fatalf("an ORG_ADMIN refund without a policy: %v, want REFUND_FORBIDDEN", err)
		}
		f.publish(t, "self-service", credit.PolicyRefund, `role == "ORG_ADMIN" && ageHours <= decimal(24) ? min(refundable, decimal(5)) : decimal(0)`)
		if _, err := f.svc.Refund(admin, refundOf(r.Event, "4")); err != nil {
			t.Fatalf("within the policy: %v", err)
		}
		if _, err := f.svc.Refund(admin, refundOf(r.Event, "6")); credit.CodeOf(err) != credit.CodeRefundExceeded {
			t.Fatalf("past the policy's 5: %v, want REFUND_EXCEEDED", err)
		}
		f.clock.add(25 * time.Hour)
		if _, err := f.svc.Refund(admin, refundOf(r.Event, "1")); credit.CodeOf(err) != credit.CodeRefundForbidden {
			t.Fatalf("after a day: %v, want REFUND_FORBIDDEN", err)
		}
		if got := f.available(t); !got.Equal(d("94")) {
			t.Fatalf("available %s, want 94", got)
		}
		verify(t, f.svc)
	})
}

// Refund x budget: a refund gives back what the event counted against the
// budgets of its pool and the pools above, in the period that counted it.
func TestRefundGivesBudgetBack(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grant(t, "100", credit.CreditSubscription)
		team, alice, _ := f.tree(t)
		if _, err := f.svc.SetBudget(ctx, team.ID, d("10"), credit.PeriodMonth, true); err != nil {
			t.Fatal(err)
		}
		r := f.useOn(t, alice, "a", "8")
		if _, err := f.svc.Refund(ctx, refundOf(r.Event, "5")); err != nil {
			t.Fatal(err)
		}
		p, _ := db.Client.Pool.Get(ctx, team.ID)
		if b, _ := f.svc.Budget(ctx, p); !b.Spent.Equal(d("3")) {
			t.Fatalf("team spent %s after the refund, want 3", b.Spent)
		}
		if r := f.useOn(t, alice, "b", "7"); r.Decision != credit.DecisionAllowed {
			t.Fatalf("a burn within the budget given back = %s %s, want ALLOWED", r.Decision, r.ReasonCode)
		}
		verify(t, f.svc)
	})
}
