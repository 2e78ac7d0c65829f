package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

const incentiveRule = `trigger == "behavior" && event.action == "onboarding.first_run" ? decimal(50)
  : trigger == "usage" && event.action == "agent.run" ? decimal("0.5") * event.quantity
  : decimal(0)`

func TestIncentives(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		team, alice, bob := f.tree(t)
		_ = team
		p := plan("incent", credit.OverageHard, credit.RolloverNone, nil)
		p.IncentiveCapPerMember, p.IncentiveCapPerPeriod, p.IncentiveExpiryDays = dp("52"), dp("60"), ptr(7)
		pl, err := f.svc.CreatePlan(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		// No incentives before a policy or a subscription.
		if res, err := f.svc.RecordBehavior(ctx, ledger.BehaviorInput{OrganizationID: f.org.ID, PoolID: &alice.ID, Name: "onboarding.first_run"}); err != nil || res.Incentive != nil {
			t.Fatalf("behaviour without a policy = %+v, %v; want nothing paid", res, err)
		}
		pol, err := f.svc.SavePolicyDraft(ctx, ledger.PolicyInput{Name: "incentives", Kind: credit.PolicyIncentive, Expression: incentiveRule})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.PublishPolicy(ctx, pol.Name, pol.Version, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: pl.ID, StartsAt: f.clock.now()}); err != nil {
			t.Fatal(err)
		}
		// A behaviour pays once per member.
		first, err := f.svc.RecordBehavior(ctx, ledger.BehaviorInput{OrganizationID: f.org.ID, PoolID: &alice.ID, Name: "onboarding.first_run"})
		if err != nil || first.Incentive == nil || !first.Incentive.Amount.Equal(d("50")) || first.Incentive.CreditType != credit.CreditIncentive {
			t.Fatalf("first run = %+v, %v; want a 50-credit INCENTIVE grant", first, err)
		}
		if exp := first.Incentive.ExpiresAt; exp == nil || !exp.Equal(f.clock.now().AddDate(0, 0, 7)) {
			t.Fatalf("incentive expires %v, want in 7 days", exp)
		}
		again, err := f.svc.RecordBehavior(ctx, ledger.BehaviorInput{OrganizationID: f.org.ID, PoolID: &alice.ID, Name: "onboarding.first_run"})
		if err != nil || !again.Duplicate || again.Incentive.ID != first.Incentive.ID {
			t.Fatalf("second first run = %+v, %v; want the first payment, duplicate", again, err)
		}
		// Usage earns 0.5 a run, within alice's cap of 52 per period (50 paid).
		for i, want := range []string{"1.5", "0.5", ""} {
			in := f.usage(fmt.Sprintf("u%d", i), "agent.run")
			in.PoolID, in.Quantity = &alice.ID, dp("3")
			res, err := f.svc.RecordUsage(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(res.Incentives) == 1 {
				got = res.Incentives[0].Amount.String()
			}
			if got != want {
				t.Fatalf("usage %d earned %q, want %q", i, got, want)
			}
		}
		// The organisation's cap of 60: bob's first run pays 60 - 52 = 8.
		b, err := f.svc.RecordBehavior(ctx, ledger.BehaviorInput{OrganizationID: f.org.ID, PoolID: &bob.ID, Name: "onboarding.first_run"})
		if err != nil || b.Incentive == nil || !b.Incentive.Amount.Equal(d("8")) {
			t.Fatalf("bob's first run = %+v, %v; want 8 (the period cap)", b, err)
		}
		// A replayed usage event shows what the first time earned.
		in := f.usage("u0", "agent.run")
		in.PoolID, in.Quantity = &alice.ID, dp("3")
		if res, err := f.svc.RecordUsage(ctx, in); err != nil || !res.Duplicate || len(res.Incentives) != 1 {
			t.Fatalf("replay = %+v, %v; want a duplicate listing its incentive", res, err)
		}
		verify(t, f.svc)
	})
}
