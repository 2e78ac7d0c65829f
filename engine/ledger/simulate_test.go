package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// A replay of two months of usage: unchanged, it is the history; with
// agent.run at 2 credits instead of 1, hand-computed.
//
// Acme (SOFT at 0.02, 100 included a month): 60, 30 and 20 agent.run in
// the first period (90 covered, then 10 covered and 10 overage), 50 in the
// second and 5 on a team pool falling through to the account: 165 credits,
// 10 of overage (0.2). At 2 credits: 120 (100 covered, 20 overage), 60 and
// 40 overage, then 100 covered and 10 of overage: 330 credits, 130 of
// overage (2.6).
// Beta (HARD, 100 included): 70 agent.run: 70 credits; at 2 credits, 140
// is more than the 100 it has: a hard stop.
func TestSimulateOnHistory(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		start := f.clock.now()
		f.subscribe(t, plan("soft", credit.OverageSoft, credit.RolloverNone, nil))
		beta, err := f.svc.CreateOrganization(ctx, ledger.OrganizationInput{Name: "Beta"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: beta.ID, Kind: credit.PoolAccount, Name: "main"}); err != nil {
			t.Fatal(err)
		}
		hard, err := f.svc.CreatePlan(ctx, plan("hard", credit.OverageHard, credit.RolloverNone, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: beta.ID, PlanID: hard.ID, StartsAt: start}); err != nil {
			t.Fatal(err)
		}
		for i, q := range []string{"60", "30", "20"} {
			f.clock.add(time.Hour)
			f.use(t, "a"+string(rune('0'+i)), q)
		}
		q := d("70")
		f.record(t, engine.UsageInput{IdempotencyKey: "b0", OrganizationID: beta.ID, Action: "agent.run", Status: credit.StatusSucceeded, Quantity: &q})
		f.clock.add(31 * 24 * time.Hour)
		if _, err := f.svc.RunPeriodClose(ctx, f.clock.now()); err != nil {
			t.Fatal(err)
		}
		f.use(t, "a3", "50")
		team, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: f.org.ID, Kind: credit.PoolTeam, Name: "team", ParentID: &f.pool.ID})
		if err != nil {
			t.Fatal(err)
		}
		f.useOn(t, team, "t0", "5") // falls through to the account's credits
		in := ledger.SimulationInput{From: start, To: f.clock.now().Add(time.Hour)}
		rep, err := f.svc.Simulate(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Events != 6 || len(rep.Rows) != 2 {
			t.Fatalf("replayed %d events in %d rows, want 6 in 2", rep.Events, len(rep.Rows))
		}
		for _, r := range rep.Rows { // unchanged: the history, exactly
			if !r.SimulatedCredits.Equal(r.BaselineCredits) || !r.SimulatedOverage.Equal(r.BaselineOverage) ||
				!r.SimulatedRevenue.Equal(r.BaselineRevenue) || r.SimulatedDenied != r.BaselineDenied || r.CrossesHardStop || r.CrossesIntoOverage {
				t.Fatalf("an unchanged replay differs from history: %+v", r)
			}
		}
		acme := rep.Rows[0]
		if !acme.BaselineCredits.Equal(d("165")) || !acme.BaselineOverage.Equal(d("10")) || !acme.BaselineRevenue.Equal(d("0.2")) {
			t.Fatalf("acme's history %+v", acme)
		}
		in.Weights = []ledger.WeightInput{{Action: "agent.run", Credits: d("2")}, {Action: "big.run", Credits: d("10")}}
		if rep, err = f.svc.Simulate(ctx, in); err != nil {
			t.Fatal(err)
		}
		acme, b := rep.Rows[0], rep.Rows[1]
		if !acme.SimulatedCredits.Equal(d("330")) || !acme.SimulatedOverage.Equal(d("130")) || !acme.SimulatedRevenue.Equal(d("2.6")) || acme.CrossesIntoOverage {
			t.Fatalf("acme at 2 credits: %+v", acme)
		}
		if b.SimulatedDenied != 1 || !b.SimulatedCredits.IsZero() || !b.CrossesHardStop || !b.BaselineCredits.Equal(d("70")) {
			t.Fatalf("beta at 2 credits: %+v", b)
		}
		for _, bad := range []ledger.SimulationInput{
			{From: start, To: start.AddDate(2, 0, 0)},
			{From: start, To: start, Weights: in.Weights},
			{From: start, To: start.Add(time.Hour), Weights: []ledger.WeightInput{{Action: "x", Credits: d("1"), Expression: "event.quantity *"}}},
		} {
			if _, err := f.svc.Simulate(ctx, bad); err == nil || credit.CodeOf(err) == credit.CodeInternal {
				t.Errorf("%+v: %v, want a specific error", bad, err)
			}
		}
		verify(t, f.svc)
	})
}
