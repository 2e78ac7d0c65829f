package graph_test

import (
	"testing"
	"time"

	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// Plan families, a previewed and applied upgrade, the subscription's
// history and a cancellation, through the API. The plans are monthly and
// the subscription starts on testNow (2026-03-02 12:00): the period runs
// to 2026-04-02 12:00 (31 days); the upgrade comes 21 days in, with 10
// days left: f = 10/31 = 0.3225806452.
func TestPlanChangesThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e, clock := lcEnv(t, db)
		e.publishPricing()
		org, _ := e.newOrg("Acme", "")
		mk := func(name string, tier int, included, fee string) string {
			in := lcHardPlan(name)
			in["includedCredits"], in["platformFee"], in["family"], in["tier"] = included, fee, "agents", tier
			return e.lcCreatePlan(in).ID
		}
		team, pro := mk("team", 1, "310", "31"), mk("pro", 2, "620", "62")
		var fam struct {
			F []struct {
				Name   string
				Plans  []struct{ ID string } `json:"plans"`
				Levers []struct {
					Name   string
					Values []string
					Grows  bool
				} `json:"levers"`
			} `json:"planFamilies"`
		}
		e.must(`{ planFamilies { name plans { id } levers { name values grows } } }`, nil, &fam)
		if len(fam.F) != 1 || len(fam.F[0].Plans) != 2 || fam.F[0].Plans[0].ID != team || fam.F[0].Levers[0].Name != "includedCredits" || !fam.F[0].Levers[0].Grows {
			t.Fatalf("planFamilies = %+v", fam.F)
		}
		sub := e.lcSubscribe(org, team, testNow).ID
		clock.set(testNow.Add(21 * 24 * time.Hour))
		var pv struct {
			P struct {
				Kind, Fraction, Credits, Fee string
				Entries                      []struct{ Kind, Amount string } `json:"entries"`
				Charges                      []struct{ Kind, Amount string } `json:"charges"`
			} `json:"previewPlanChange"`
		}
		// (620 - 310) x 0.3225806452 = 100.000000012 -> 100 credits;
		// (62 - 31) x 0.3225806452 = 10.0000000012 -> 10.
		e.must(`query($s: ID!, $p: ID!) { previewPlanChange(subscriptionId: $s, planId: $p, at: NOW) { kind fraction credits fee entries { kind amount } charges { kind amount } } }`,
			map[string]any{"s": sub, "p": pro}, &pv)
		if pv.P.Kind != "UPGRADE" || pv.P.Fraction != "0.3225806452" || pv.P.Credits != "100" || pv.P.Fee != "10" || len(pv.P.Entries) != 1 || len(pv.P.Charges) != 1 {
			t.Fatalf("preview = %+v", pv.P)
		}
		var ch struct {
			C struct{ Kind, Status, Credits, Fee string } `json:"changePlan"`
		}
		e.must(`mutation($s: ID!, $p: ID!) { changePlan(subscriptionId: $s, planId: $p, at: NOW) { kind status credits fee } }`, map[string]any{"s": sub, "p": pro}, &ch)
		if ch.C.Credits != pv.P.Credits || ch.C.Fee != pv.P.Fee || ch.C.Status != "APPLIED" {
			t.Fatalf("changePlan = %+v, want the preview's %+v", ch.C, pv.P)
		}
		_, errs := e.do(`mutation($s: ID!, $p: ID!) { changePlan(subscriptionId: $s, planId: $p, at: NOW) { kind } }`, map[string]any{"s": sub, "p": pro})
		wantErr(t, "the same plan", errs, "SAME_PLAN")
		e.must(`mutation($s: ID!) { cancelSubscription(subscriptionId: $s, at: PERIOD_END) { kind } }`, map[string]any{"s": sub}, nil)
		_, errs = e.do(`mutation($s: ID!) { cancelSubscription(subscriptionId: $s, at: NOW) { kind } }`, map[string]any{"s": sub})
		wantErr(t, "cancelling twice", errs, "SUBSCRIPTION_ENDED")
		var hist struct {
			O struct {
				S struct {
					Plan       struct{ ID string }         `json:"plan"`
					CanceledAt *string                     `json:"canceledAt"`
					Changes    []struct{ Kind, At string } `json:"changes"`
				} `json:"subscription"`
			} `json:"organization"`
		}
		e.must(`query($o: ID!) { organization(id: $o) { subscription { plan { id } canceledAt changes { kind at } } } }`, map[string]any{"o": org}, &hist)
		if s := hist.O.S; s.Plan.ID != pro || s.CanceledAt == nil || len(s.Changes) != 2 || s.Changes[0].Kind != "UPGRADE" || s.Changes[1].Kind != "CANCEL" {
			t.Fatalf("subscription after the changes = %+v", s)
		}
		e.verify("after plan changes")
	})
}

// Tiers, a term end rule, a renewal onto another plan and an add-on,
// through the API. The subscription starts on testNow (2026-03-02 12:00);
// its first monthly period runs 31 days.
func TestTermsTiersAndAddOnsThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e, clock := lcEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		bad := lcHardPlan("bad")
		bad["onDemandPrice"] = "1"
		bad["onDemandTiers"] = []map[string]any{{"from": "0", "upTo": "100", "price": "1"}, {"from": "50", "price": "0.5"}}
		_, errs := e.do(lqCreatePlan, map[string]any{"in": bad})
		wantExt(t, "overlapping tiers", wantErr(t, "overlapping tiers", errs, "TIER_OVERLAP"), "field", "onDemandTiers[1]")
		in := lcHardPlan("base")
		in["onDemandTiers"] = []map[string]any{{"from": "0", "upTo": "100", "price": "1"}, {"from": "100", "price": "0.5"}}
		in["termEndCredits"], in["termEndRefundRate"] = "REFUND", "0.01"
		base := e.lcCreatePlan(in).ID
		pro := lcHardPlan("pro")
		pro["includedCredits"] = "600"
		proID := e.lcCreatePlan(pro).ID
		var p struct {
			P []struct {
				OnDemandTiers []struct {
					From, Price string
					UpTo        *string
				} `json:"onDemandTiers"`
				TermEndCredits string `json:"termEndCredits"`
			} `json:"plans"`
		}
		e.must(`{ plans { onDemandTiers { from upTo price } termEndCredits } }`, nil, &p)
		if len(p.P) != 2 || len(p.P[0].OnDemandTiers) != 2 || p.P[0].OnDemandTiers[1].UpTo != nil || p.P[0].TermEndCredits != "REFUND" {
			t.Fatalf("plans = %+v", p.P)
		}
		var sub struct {
			S struct{ ID string } `json:"subscribe"`
		}
		e.must(`mutation($o: ID!, $p: ID!, $at: Time!) { subscribe(organizationId: $o, planId: $p, startsAt: $at, termPeriods: 1) { id } }`,
			map[string]any{"o": org, "p": base, "at": testNow.Format(time.RFC3339)}, &sub)
		var buy struct {
			G struct{ UnitPrice string } `json:"purchaseCredits"`
		}
		e.must(lqPurchase, map[string]any{"pool": pool, "credits": "80"}, nil)
		e.must(lqPurchase, map[string]any{"pool": pool, "credits": "40"}, &buy) // 20 x 1 + 20 x 0.5 = 30: 0.75 each
		if buy.G.UnitPrice != "0.75" {
			t.Fatalf("40 credits across the tier boundary at %s each, want 0.75", buy.G.UnitPrice)
		}
		var add struct {
			A struct{ ID string } `json:"createAddOn"`
		}
		e.must(`mutation { createAddOn(input: {name: "boost", credits: "300", fee: "31"}) { id } }`, nil, &add)
		var att struct {
			A struct {
				ID    string
				AddOn struct{ Name string } `json:"addOn"`
			} `json:"attachAddOn"`
		}
		vars := map[string]any{"s": sub.S.ID, "a": add.A.ID}
		e.must(`mutation($s: ID!, $a: ID!) { attachAddOn(subscriptionId: $s, addOnId: $a) { id addOn { name } } }`, vars, &att)
		_, errs = e.do(`mutation($s: ID!, $a: ID!) { attachAddOn(subscriptionId: $s, addOnId: $a) { id } }`, vars)
		wantErr(t, "attaching twice", errs, "ADD_ON_ATTACHED")
		e.must(`mutation($s: ID!, $p: ID!) { changePlan(subscriptionId: $s, planId: $p, at: TERM_END) { status } }`, map[string]any{"s": sub.S.ID, "p": proID}, nil)
		clock.set(testNow.Add(15*24*time.Hour + 12*time.Hour)) // half the period left: 150 credits and 15.5 back
		e.must(`mutation($id: ID!) { removeAddOn(id: $id) { removedAt } }`, map[string]any{"id": att.A.ID}, nil)
		_, errs = e.do(`mutation($id: ID!) { removeAddOn(id: $id) { id } }`, map[string]any{"id": att.A.ID})
		wantErr(t, "removing twice", errs, "ADD_ON_REMOVED")
		var got struct {
			O struct {
				S struct {
					RenewalPlan *struct{ ID string }          `json:"renewalPlan"`
					AddOns      []struct{ RemovedAt *string } `json:"addOns"`
				} `json:"subscription"`
			} `json:"organization"`
		}
		e.must(`query($o: ID!) { organization(id: $o) { subscription { renewalPlan { id } addOns { removedAt } } } }`, map[string]any{"o": org}, &got)
		if s := got.O.S; s.RenewalPlan == nil || s.RenewalPlan.ID != proID || len(s.AddOns) != 1 || s.AddOns[0].RemovedAt == nil {
			t.Fatalf("subscription = %+v", s)
		}
		// The term ends on 2026-04-02: its unused included credits (100) are
		// refunded at 0.01, and it renews onto pro.
		clock.set(testNow.AddDate(0, 1, 0))
		e.lcClose(testNow.AddDate(0, 1, 0))
		var chs struct {
			C struct {
				Edges []struct {
					Node struct{ Kind, Amount string } `json:"node"`
				} `json:"edges"`
			} `json:"charges"`
		}
		e.must(lqCharges, map[string]any{"org": org, "first": 50}, &chs)
		kinds := map[string]string{}
		for _, ed := range chs.C.Edges {
			kinds[ed.Node.Kind] = ed.Node.Amount // newest first: the oldest of each kind wins
		}
		if kinds["TERM_REFUND"] != "-1" || kinds["ADD_ON"] != "31" {
			t.Fatalf("charges %v, want a TERM_REFUND of -1 and the add-on's 31", kinds)
		}
		e.must(`query($o: ID!) { organization(id: $o) { subscription { plan { id } renewalPlan { id } } } }`, map[string]any{"o": org}, nil)
		e.verify("after terms, tiers and add-ons")
	})
}
