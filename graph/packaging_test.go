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
