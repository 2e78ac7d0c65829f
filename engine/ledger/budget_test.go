package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent"
	"github.com/creditd/creditd/ent/ledgerentry"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// tree adds a TEAM pool under the fixture's ACCOUNT pool and two PERSONAL
// pools under the team.
func (f *fixture) tree(t *testing.T) (team, alice, bob *ent.Pool) {
	t.Helper()
	ctx := context.Background()
	mk := func(kind credit.PoolKind, name string, parent int) *ent.Pool {
		p, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: f.org.ID, Kind: kind, Name: name, ParentID: &parent})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	team = mk(credit.PoolTeam, "team", f.pool.ID)
	return team, mk(credit.PoolPersonal, "alice", team.ID), mk(credit.PoolPersonal, "bob", team.ID)
}

func (f *fixture) grantTo(t *testing.T, p *ent.Pool, amount string) {
	t.Helper()
	if _, err := f.svc.GrantCredits(context.Background(), ledger.GrantInput{PoolID: p.ID, CreditType: credit.CreditSubscription, Amount: d(amount)}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) useOn(t *testing.T, p *ent.Pool, key, qty string) ledger.UsageResult {
	t.Helper()
	in := f.usage(key, "agent.run")
	in.PoolID, in.Quantity = &p.ID, dp(qty)
	res, err := f.svc.RecordUsage(context.Background(), in)
	if err != nil {
		t.Fatalf("usage %s on pool %d: %v", key, p.ID, err)
	}
	return res
}

func availableOf(t *testing.T, f *fixture, p *ent.Pool) string {
	t.Helper()
	b, err := f.svc.Balance(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return b.Available.String()
}

func TestPoolsFallThrough(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		team, alice, _ := f.tree(t)
		f.grantTo(t, f.pool, "100")
		f.grantTo(t, team, "10")
		res := f.useOn(t, alice, "a1", "15")
		if res.Decision != credit.DecisionAllowed || len(res.Draws) != 2 {
			t.Fatalf("usage on a personal pool = %+v; want two draws, team then account", res)
		}
		if a, tm, acc := availableOf(t, f, alice), availableOf(t, f, team), availableOf(t, f, f.pool); a != "0" || tm != "0" || acc != "95" {
			t.Fatalf("balances alice %s team %s account %s; want 0, 0, 95", a, tm, acc)
		}
		// Each BURN entry is on its grant's pool; the event stays on alice's.
		es, err := db.Client.LedgerEntry.Query().Where(ledgerentry.KindEQ(credit.EntryBurn)).All(ctx)
		if err != nil || len(es) != 2 {
			t.Fatalf("entries %v %v", es, err)
		}
		pools := map[int]bool{es[0].PoolID: true, es[1].PoolID: true}
		if !pools[team.ID] || !pools[f.pool.ID] || res.Event.PoolID != alice.ID {
			t.Fatalf("entries on pools %v, event on %d; want team %d and account %d, event on alice %d", pools, res.Event.PoolID, team.ID, f.pool.ID, alice.ID)
		}
		verify(t, f.svc)
	})
}

func TestBudgets(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		team, alice, bob := f.tree(t)
		f.grantTo(t, f.pool, "1000")
		if _, err := f.svc.SetBudget(ctx, team.ID, d("20"), credit.PeriodMonth, true); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.SetBudget(ctx, alice.ID, d("5"), credit.PeriodDay, false); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			pool     *ent.Pool
			qty      string
			decision credit.Decision
			code     credit.Code
		}{
			{alice, "4", credit.DecisionAllowed, ""},
			{alice, "3", credit.DecisionAllowed, ""}, // over alice's soft budget: an alert
			{alice, "1", credit.DecisionAllowed, ""}, // no second alert
			{bob, "12", credit.DecisionAllowed, ""},  // team spent 20 of 20
			{bob, "1", credit.DecisionDenied, credit.CodeBudgetExceeded},
			{alice, "1", credit.DecisionDenied, credit.CodeBudgetExceeded}, // the account still has credits
		}
		for i, st := range steps {
			res := f.useOn(t, st.pool, fmt.Sprintf("k%d", i), st.qty)
			if res.Decision != st.decision || res.ReasonCode != st.code {
				t.Fatalf("step %d: %s %s; want %s %s (%s)", i, res.Decision, res.ReasonCode, st.decision, st.code, res.Reason)
			}
		}
		alerts, err := f.svc.Alerts(ctx, &f.org.ID, 10, false)
		if err != nil || len(alerts) != 1 || alerts[0].PoolID == nil || *alerts[0].PoolID != alice.ID {
			t.Fatalf("alerts = %v, %v; want one for alice", alerts, err)
		}
		b, err := f.svc.Budget(ctx, mustPool(t, f, team.ID))
		if err != nil || b == nil || !b.Spent.Equal(d("20")) || !b.Hard {
			t.Fatalf("team budget = %+v, %v; want 20 spent of a hard budget", b, err)
		}
		// Next month the team may spend again.
		f.clock.add(32 * 24 * time.Hour)
		if res := f.useOn(t, bob, "next", "1"); res.Decision != credit.DecisionAllowed {
			t.Fatalf("next month: %s (%s); want ALLOWED", res.Decision, res.Reason)
		}
		verify(t, f.svc)
	})
}

func mustPool(t *testing.T, f *fixture, id int) *ent.Pool {
	t.Helper()
	p, err := f.svc.Pool(context.Background(), id)
	if err != nil || p == nil {
		t.Fatalf("pool %d: %v", id, err)
	}
	return p
}

// Members racing under one team's hard budget never overspend it.
func TestBudgetsConcurrent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		team, alice, bob := f.tree(t)
		f.grantTo(t, f.pool, "1000")
		if _, err := f.svc.SetBudget(ctx, team.ID, d("50"), credit.PeriodMonth, true); err != nil {
			t.Fatal(err)
		}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 20; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				p := alice
				if w%2 == 1 {
					p = bob
				}
				in := f.usage(fmt.Sprintf("w%d", w), "agent.run")
				in.PoolID, in.Quantity = &p.ID, dp("5")
				res, err := f.svc.RecordUsage(ctx, in)
				if err != nil {
					t.Errorf("usage: %v", err)
					return
				}
				if res.Decision == credit.DecisionAllowed {
					allowed.Add(1)
				}
			}(w)
		}
		wg.Wait()
		if allowed.Load() != 10 {
			t.Fatalf("%d of 20 five-credit burns allowed under a budget of 50; want 10", allowed.Load())
		}
		if got := availableOf(t, f, f.pool); got != "950" {
			t.Fatalf("account available = %s, want 950", got)
		}
		verify(t, f.svc)
	})
}

func TestSetBudgetBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		if _, err := f.svc.SetBudget(ctx, f.pool.ID, d("-1"), credit.PeriodMonth, true); credit.CodeOf(err) != credit.CodeValidation {
			t.Fatalf("negative budget: %v, want VALIDATION", err)
		}
		other := f.org.ID + 1000
		scoped := auth.With(ctx, &auth.Principal{KeyID: 1, Name: "other admin", Role: credit.RoleOrgAdmin, OrgID: &other})
		if _, err := f.svc.SetBudget(scoped, f.pool.ID, d("10"), credit.PeriodMonth, true); credit.CodeOf(err) != credit.CodeNotFound {
			t.Fatalf("another organisation's pool: %v, want NOT_FOUND", err)
		}
		if b, err := f.svc.Budget(ctx, mustPool(t, f, f.pool.ID)); err != nil || b != nil {
			t.Fatalf("budget after refused calls = %+v, %v; want none", b, err)
		}
	})
}

// A pool that does not fall through spends only its own grants.
func TestPoolWithoutFallThrough(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		f.grantTo(t, f.pool, "100")
		solo, err := f.svc.CreatePool(ctx, ledger.PoolInput{OrganizationID: f.org.ID, Kind: credit.PoolTeam, Name: "solo",
			ParentID: &f.pool.ID, NoFallThrough: true})
		if err != nil {
			t.Fatal(err)
		}
		f.grantTo(t, solo, "3")
		if res := f.useOn(t, solo, "a", "5"); res.Decision != credit.DecisionDenied {
			t.Fatalf("5 credits on a pool holding 3 that does not fall through = %s; want DENIED", res.Decision)
		}
		if res := f.useOn(t, solo, "b", "3"); res.Decision != credit.DecisionAllowed {
			t.Fatalf("3 credits = %s; want ALLOWED", res.Decision)
		}
		if got := availableOf(t, f, f.pool); got != "100" {
			t.Fatalf("account available = %s, want 100 (untouched)", got)
		}
		verify(t, f.svc)
	})
}
