package ledger_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/auth"
	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/ent/auditentry"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

func (f *fixture) draft(t *testing.T, ws ...ledger.WeightInput) int {
	t.Helper()
	r, err := f.svc.SaveRegisterDraft(context.Background(), "default", ws)
	if err != nil {
		t.Fatal(err)
	}
	return r.Version
}

// A price change for existing subscribers waits out the notice period;
// adding an action does not; an OPERATOR may force it (audited), no one
// else; a BURN policy replacing one in effect is a price change too.
func TestNoticePeriods(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db) // default v1: agent.run 1, big.run 10
		f.subscribe(t, plan("team", credit.OverageHard, credit.RolloverNone, nil))
		v2 := f.draft(t, ledger.WeightInput{Action: "agent.run", Credits: d("2")}, ledger.WeightInput{Action: "big.run", Credits: d("10")})
		if _, err := f.svc.PublishRegister(ctx, "default", v2, nil); credit.CodeOf(err) != credit.CodeNoticePeriod {
			t.Fatalf("a re-weighting at once: %v, want NOTICE_PERIOD", err)
		}
		pricing := auth.With(ctx, &auth.Principal{KeyID: 2, Name: "pricing", Role: credit.RolePricing})
		if _, err := f.svc.PublishRegisterWith(pricing, "default", v2, ledger.PublishOptions{Force: true}); credit.CodeOf(err) != auth.CodeForbidden {
			t.Fatalf("PRICING forcing it: %v, want FORBIDDEN", err)
		}
		soon := f.clock.now().AddDate(0, 0, 29)
		if _, err := f.svc.PublishRegister(ctx, "default", v2, &soon); credit.CodeOf(err) != credit.CodeNoticePeriod {
			t.Fatalf("29 days ahead: %v, want NOTICE_PERIOD", err)
		}
		later := f.clock.now().AddDate(0, 0, 30)
		if _, err := f.svc.PublishRegister(ctx, "default", v2, &later); err != nil {
			t.Fatalf("30 days ahead: %v", err)
		}
		v3 := f.draft(t, ledger.WeightInput{Action: "agent.run", Credits: d("1")}, ledger.WeightInput{Action: "big.run", Credits: d("10")},
			ledger.WeightInput{Action: "new.run", Credits: d("3")})
		if _, err := f.svc.PublishRegister(ctx, "default", v3, nil); err != nil {
			t.Fatalf("adding an action at once: %v", err)
		}
		v4 := f.draft(t, ledger.WeightInput{Action: "agent.run", Credits: d("1")}, ledger.WeightInput{Action: "big.run", Credits: d("10")})
		operator := auth.With(ctx, &auth.Principal{KeyID: 1, Name: "ops", Role: credit.RoleOperator})
		if _, err := f.svc.PublishRegisterWith(operator, "default", v4, ledger.PublishOptions{Force: true}); err != nil {
			t.Fatalf("an OPERATOR forcing the removal of new.run: %v", err)
		}
		forced, err := f.db.Client.AuditEntry.Query().Where(auditentry.ActionContains("forced")).Count(ctx)
		if err != nil || forced != 1 {
			t.Fatalf("%d forced publishes audited (%v), want 1", forced, err)
		}
		f.publish(t, "triple", credit.PolicyBurn, `weight * event.quantity * 3`) // none in effect: not a change of price
		p, err := f.svc.SavePolicyDraft(ctx, ledger.PolicyInput{Name: "triple", Kind: credit.PolicyBurn, Expression: `weight * event.quantity * 4`})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.PublishPolicy(ctx, p.Name, p.Version, nil); credit.CodeOf(err) != credit.CodeNoticePeriod || !strings.Contains(err.Error(), "1 subscribers") {
			t.Fatalf("a BURN policy replacing one in effect: %v, want NOTICE_PERIOD", err)
		}
	})
}

// A subscription grandfathered on version 1 until a date: usage before it
// is priced by version 1, after it by the version then in effect; every
// event names its version.
func TestGrandfatheringUntilADate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		until := f.clock.now().AddDate(0, 0, 10)
		f.subscribeWith(t, plan("team", credit.OverageHard, credit.RolloverNone, nil), ledger.SubscribeInput{RegisterVersion: ptr(1), GrandfatheredUntil: &until})
		v2 := f.draft(t, ledger.WeightInput{Action: "agent.run", Credits: d("2")}, ledger.WeightInput{Action: "big.run", Credits: d("10")})
		// The only subscriber is pinned past now: no notice is owed now.
		if _, err := f.svc.PublishRegister(ctx, "default", v2, nil); err != nil {
			t.Fatal(err)
		}
		before := f.record(t, f.usage("before", "agent.run"))
		f.clock.add(11 * 24 * time.Hour)
		if _, err := f.svc.RunPeriodClose(ctx, f.clock.now()); err != nil {
			t.Fatal(err)
		}
		after := f.record(t, f.usage("after", "agent.run"))
		if !before.Credits.Equal(d("1")) || *before.Event.RegisterVersion != 1 || !after.Credits.Equal(d("2")) || *after.Event.RegisterVersion != v2 {
			t.Fatalf("before the date %s credits (v%d), after %s (v%d); want 1 (v1) then 2 (v%d)",
				before.Credits, *before.Event.RegisterVersion, after.Credits, *after.Event.RegisterVersion, v2)
		}
		if _, err := f.svc.Subscribe(ctx, ledger.SubscribeInput{OrganizationID: f.org.ID, PlanID: 1, StartsAt: f.clock.now(), GrandfatheredUntil: &until}); credit.CodeOf(err) != credit.CodeValidation {
			t.Fatalf("grandfathering without a pin: %v, want VALIDATION", err)
		}
		verify(t, f.svc)
	})
}

// The diff of two versions, with the value checks at each price point.
func TestRegisterDiff(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db)
		p := plan("team", credit.OverageHard, credit.RolloverNone, nil) // 0.01 a credit
		p.SegmentPrices = []credit.SegmentPrice{{Segment: "enterprise", PricePerCredit: dp("0.001")}}
		if _, err := f.svc.CreatePlan(ctx, p); err != nil {
			t.Fatal(err)
		}
		// agent.run 1 -> 12 credits, value 1, cost 0.02: at 0.01 it sells at
		// 0.12 (OK), at 0.001 at 0.012 (UNDERWATER); big.run removed.
		f.draft(t, ledger.WeightInput{Action: "agent.run", Credits: d("12"), ValuePerAction: dp("1"), CostPerAction: dp("0.02")})
		diff, old, nu, err := f.svc.RegisterDiff(ctx, "default", nil, nil)
		if err != nil || old.Version != 1 || nu.Version != 2 || !diff.PriceChange || len(diff.Actions) != 2 {
			t.Fatalf("diff %+v (%v)", diff, err)
		}
		a, b := diff.Actions[0], diff.Actions[1]
		if a.Change != "REWEIGHTED" || !a.Old.Credits.Equal(d("1")) || !a.New.Credits.Equal(d("12")) || b.Change != "REMOVED" {
			t.Fatalf("actions %+v, %+v", a, b)
		}
		if len(a.Economics) != 2 || a.Economics[0].Check != "OK" || a.Economics[1].Check != "UNDERWATER" || diff.Violations != 1 {
			t.Fatalf("economics %+v, %d violations", a.Economics, diff.Violations)
		}
		if _, _, _, err := f.svc.RegisterDiff(ctx, "default", ptr(9), nil); credit.CodeOf(err) != credit.CodeNotFound {
			t.Fatalf("an unknown version: %v, want NOT_FOUND", err)
		}
	})
}
