package graph_test

import (
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// KPIs, revenue recognition and health through the API (the figures are
// tested on a hand-built dataset in package kpi): a monthly plan of 100
// included credits at 0.01 for a fee of 5, three agent.run (4 credits
// each) in March 2026.
func TestKPIsThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e, clock := lcEnv(t, db)
		e.publishPricing()
		org, _ := e.newOrg("Acme", "")
		plan := e.lcCreatePlan(lcHardPlan("team")).ID
		e.lcSubscribe(org, plan, testNow)
		clock.set(testNow.Add(time.Hour))
		for _, key := range []string{"k1", "k2", "k3"} {
			e.record(map[string]any{"idempotencyKey": key, "organizationId": org, "action": "agent.run"})
		}
		vars := map[string]any{"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
		var out struct {
			K struct {
				CommittedPoolArr, Burned, Granted, Expired, Currency string
				ValueToBurn, CreditNrr                               *float64
				Totals                                               struct{ FeeRevenue, DeferredLiability, BurnedValue string }
				Rows                                                 []struct {
					Organization struct{ Name string }
					Figures      struct{ Burned string }
				}
				Series []struct{ Month string }
			} `json:"kpis"`
		}
		e.must(`query($from: Time!, $to: Time!) { kpis(from: $from, to: $to, groupBy: [ORGANIZATION]) {
  committedPoolArr burned granted expired valueToBurn creditNrr currency
  totals { feeRevenue deferredLiability burnedValue } rows { organization { name } figures { burned } } series { month } } }`, vars, &out)
		k := out.K
		// 12 burned of 100 granted at 0.01: 0.12 recognised, 0.88 deferred; ARR 5 x 12.
		if k.CommittedPoolArr != "60" || k.Burned != "12" || k.Granted != "100" || k.Expired != "0" || k.Currency != "USD" ||
			k.Totals.FeeRevenue != "5" || k.Totals.DeferredLiability != "0.88" || k.Totals.BurnedValue != "0.12" ||
			len(k.Rows) != 1 || k.Rows[0].Organization.Name != "Acme" || k.Rows[0].Figures.Burned != "12" || len(k.Series) != 1 {
			t.Fatalf("kpis = %+v", k)
		}
		// No value per action in the register: 0 / 0.12; no ARR at the range's start: no cohort.
		if k.ValueToBurn == nil || *k.ValueToBurn != 0 || k.CreditNrr != nil {
			t.Fatalf("valueToBurn %v, creditNrr %v: want 0 and null", k.ValueToBurn, k.CreditNrr)
		}
		var rev struct {
			R struct {
				Months  []struct{ Billed, Recognised, Closing string }
				Journal string
			} `json:"revenueRecognition"`
		}
		e.must(`query($from: Time!, $to: Time!) { revenueRecognition(from: $from, to: $to) { months { billed recognised closing } journal } }`, vars, &rev)
		if len(rev.R.Months) != 1 || rev.R.Months[0].Billed != "1" || rev.R.Months[0].Closing != "0.88" ||
			!strings.Contains(rev.R.Journal, "2026-03,credit_usage_revenue,RECOGNISED,,0.12,USD") {
			t.Fatalf("revenueRecognition = %+v", rev.R)
		}
		var h struct {
			H []struct {
				Organization struct{ Name string }
				Status       string
			} `json:"accountHealth"`
		}
		e.must(`{ accountHealth { organization { name } status } }`, nil, &h)
		if len(h.H) != 1 || h.H[0].Organization.Name != "Acme" || h.H[0].Status == "" {
			t.Fatalf("accountHealth = %+v", h.H)
		}
		_, errs := e.do(`{ kpis(from: "2026-04-01T00:00:00Z", to: "2026-03-01T00:00:00Z") { burned } }`, nil)
		wantErr(t, "a range ending before it starts", errs, "VALIDATION")
		_, errs = e.do(`{ kpis(from: "2020-01-01T00:00:00Z", to: "2026-03-01T00:00:00Z") { burned } }`, nil)
		wantErr(t, "a range too long", errs, "VALIDATION")
		_, errs = e.do(`{ kpis(from: "2026-03-01T00:00:00Z", to: "2026-04-01T00:00:00Z", groupBy: [MONTH, MONTH]) { burned } }`, nil)
		wantErr(t, "a key twice", errs, "VALIDATION")
	})
}
