package graph_test

import (
	"testing"
	"time"

	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// simulate through the API: three agent.run (4 credits) on a HARD plan of
// 100 included; at 40 credits the third would be a hard stop.
func TestSimulateThroughTheAPI(t *testing.T) {
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
		const q = `query($in: SimulationInput!) { simulate(input: $in) { events rows { organizationId organization { name } baselineCredits simulatedCredits
  baselineRevenue simulatedRevenue simulatedDenied crossesHardStop } } }`
		type row struct {
			OrganizationID                    string
			Organization                      struct{ Name string }
			BaselineCredits, SimulatedCredits string
			SimulatedDenied                   int
			CrossesHardStop                   bool
		}
		var out struct {
			S struct {
				Events int
				Rows   []row
			} `json:"simulate"`
		}
		in := map[string]any{"from": testNow.Format(time.RFC3339), "to": testNow.Add(2 * time.Hour).Format(time.RFC3339)}
		e.must(q, map[string]any{"in": in}, &out)
		if out.S.Events != 3 || len(out.S.Rows) != 1 || out.S.Rows[0].BaselineCredits != "12" || out.S.Rows[0].SimulatedCredits != "12" ||
			out.S.Rows[0].Organization.Name != "Acme" {
			t.Fatalf("unchanged = %+v", out.S)
		}
		in["weights"] = []map[string]any{{"action": "agent.run", "credits": "40"}}
		e.must(q, map[string]any{"in": in}, &out)
		if r := out.S.Rows[0]; r.SimulatedCredits != "80" || r.SimulatedDenied != 1 || !r.CrossesHardStop {
			t.Fatalf("at 40 credits = %+v", r)
		}
		in["to"] = testNow.AddDate(2, 0, 0).Format(time.RFC3339)
		_, errs := e.do(q, map[string]any{"in": in})
		wantErr(t, "a range over the limit", errs, "VALIDATION")
	})
}
