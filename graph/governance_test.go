package graph_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/engine/ledger"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// Alert rules, alerts and webhook endpoints through the API, as a buyer's
// admin uses them.
func TestAlertsAndWebhooksThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		e.grant(pool, "SUBSCRIPTION", "100", nil)
		orgID := atoiT(t, org)
		_, adminKey, err := e.svc.CreateKey(context.Background(), ledger.KeyInput{Name: "acme admin", Role: credit.RoleOrgAdmin, OrganizationID: &orgID})
		if err != nil {
			t.Fatal(err)
		}
		admin := e.lcAs(t, adminKey)
		create := `mutation($in: AlertRuleInput!) { createAlertRule(input: $in) { id kind threshold poolId enabled } }`
		_, errs := admin.do(create, map[string]any{"in": map[string]any{"poolId": pool, "kind": "BALANCE_BELOW", "threshold": "-1"}})
		wantErr(t, "a negative threshold", errs, "VALIDATION")
		admin.must(create, map[string]any{"in": map[string]any{"poolId": pool, "kind": "BALANCE_BELOW", "threshold": "500"}}, nil)
		if _, err := e.svc.EvaluateAlerts(context.Background(), testNow); err != nil {
			t.Fatal(err)
		}
		var alerts struct {
			A []struct {
				ID, Kind, Message, Condition string
				RuleID                       *string `json:"ruleId"`
			} `json:"alerts"`
		}
		admin.must(`{ alerts(unacknowledged: true) { id kind message condition ruleId } }`, nil, &alerts)
		if len(alerts.A) != 1 || alerts.A[0].Kind != "BALANCE_BELOW" || alerts.A[0].RuleID == nil {
			t.Fatalf("alerts = %+v; want one BALANCE_BELOW from the rule", alerts.A)
		}
		admin.must(`mutation($id: ID!) { acknowledgeAlert(id: $id) { acknowledgedAt acknowledgedBy } }`, map[string]any{"id": alerts.A[0].ID}, nil)
		admin.must(`{ alerts(unacknowledged: true) { id } }`, nil, &alerts)
		if len(alerts.A) != 0 {
			t.Fatalf("unacknowledged after acknowledging: %+v", alerts.A)
		}
		hook := `mutation($in: WebhookEndpointInput!) { createWebhookEndpoint(input: $in) { secret endpoint { id url eventTypes enabled deliveries(first: 5) { edges { node { id } } } } } }`
		_, errs = admin.do(hook, map[string]any{"in": map[string]any{"organizationId": org, "url": "http://127.0.0.1:8080/hook", "eventTypes": []string{"alert.fired"}}})
		wantErr(t, "a loopback URL", errs, "VALIDATION")
		_, errs = admin.do(hook, map[string]any{"in": map[string]any{"url": "https://hooks.example.com/x", "eventTypes": []string{"alert.fired"}}})
		wantErr(t, "a vendor-wide endpoint by an ORG_ADMIN", errs, "FORBIDDEN")
		var created struct {
			C struct {
				Secret   string `json:"secret"`
				Endpoint struct {
					ID      string `json:"id"`
					Enabled bool   `json:"enabled"`
				} `json:"endpoint"`
			} `json:"createWebhookEndpoint"`
		}
		admin.must(hook, map[string]any{"in": map[string]any{"organizationId": org, "url": "https://hooks.example.com/creditd", "eventTypes": []string{"alert.fired", "alert.acknowledged"}}}, &created)
		if !strings.HasPrefix(created.C.Secret, "whsec_") || !created.C.Endpoint.Enabled {
			t.Fatalf("createWebhookEndpoint = %+v", created.C)
		}
		var listed struct {
			L []map[string]any `json:"webhookEndpoints"`
		}
		admin.must(`{ webhookEndpoints { id url } }`, nil, &listed)
		if len(listed.L) != 1 || strings.Contains(string(mustJSON(t, listed.L)), "whsec_") {
			t.Fatalf("webhookEndpoints = %v; want the one endpoint, no secret", listed.L)
		}
		admin.must(`mutation($id: ID!) { rotateWebhookSecret(id: $id, overlapHours: 1) { secret endpoint { previousSecretExpiresAt } } }`, map[string]any{"id": created.C.Endpoint.ID}, nil)
		e.verify("after alerts and webhooks")
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The calculator and the predictor through the API.
func TestQuoteAndForecastThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e, _ := lcEnv(t, db)
		e.publishPricing()
		p := e.lcCreatePlan(lcPlanInput("team")) // 100 included, fee 5, SOFT at 0.02
		var q struct {
			Q struct {
				Credits, Price, Included, Excess, OverageCost string
				Lines                                         []struct{ Action, Credits string }
			} `json:"quote"`
		}
		// 30 agent.run x 4 credits = 120: 100 included, 20 overage x 0.02 =
		// 0.4, plus the fee of 5 = 5.4.
		e.must(`query($p: ID!, $u: [ActionCountInput!]!) { quote(planId: $p, usage: $u) { credits price included excess overageCost lines { action credits } } }`,
			map[string]any{"p": p.ID, "u": []map[string]any{{"action": "agent.run", "count": "30"}}}, &q)
		if q.Q.Credits != "120" || q.Q.Price != "5.4" || q.Q.Included != "100" || q.Q.Excess != "20" || q.Q.OverageCost != "0.4" || len(q.Q.Lines) != 1 {
			t.Fatalf("quote = %+v; want 120 credits, 5.4", q.Q)
		}
		_, errs := e.do(`query($p: ID!) { quote(planId: $p, usage: [{action: "nope", count: "1"}]) { credits } }`, map[string]any{"p": p.ID})
		wantErr(t, "an unknown action", errs, "UNKNOWN_ACTION")
		_, errs = e.do(`query($p: ID!) { quote(planId: $p, usage: [{action: "agent.run", count: "-1"}]) { credits } }`, map[string]any{"p": p.ID})
		wantErr(t, "a negative count", errs, "VALIDATION")
		_, pool := e.newOrg("Acme", "")
		var fc struct {
			F struct {
				PoolID, DailyBurn, Method string
				DepletesAt                *string
				Days                      []map[string]any
			} `json:"forecast"`
		}
		e.must(`query($p: ID!) { forecast(poolId: $p, horizonDays: 14) { poolId dailyBurn method depletesAt days { date burn } } }`, map[string]any{"p": pool}, &fc)
		if fc.F.PoolID != pool || fc.F.DailyBurn != "0" || fc.F.Method != "no history" || fc.F.DepletesAt != nil || len(fc.F.Days) != 14 {
			t.Fatalf("forecast of a new pool = %+v; want no history, zero burn, 14 days", fc.F)
		}
		_, errs = e.do(`{ forecast(poolId: "999999") { dailyBurn } }`, nil)
		wantErr(t, "an unknown pool", errs, "NOT_FOUND")
		_, errs = e.do(`query($p: ID!) { forecast(poolId: $p, horizonDays: 0) { dailyBurn } }`, map[string]any{"p": pool})
		wantErr(t, "horizon 0", errs, "VALIDATION")
	})
}

// Usage views: a summary by action, a filtered ledger, and CSV exports
// over HTTP with the caller's access rules.
func TestUsageViewsThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newEnv(t, db)
		e.publishPricing()
		org, pool := e.newOrg("Acme", "")
		e.grant(pool, "SUBSCRIPTION", "1000", nil)
		e.record(map[string]any{"idempotencyKey": "u1", "organizationId": org, "action": "agent.run", "quantity": "2"})
		e.record(map[string]any{"idempotencyKey": "u2", "organizationId": org, "action": "tenth", "quantity": "3"})
		var sum struct {
			S []struct {
				Action  *string `json:"action"`
				Credits string  `json:"credits"`
				Events  int     `json:"events"`
			} `json:"usageSummary"`
		}
		e.must(`query($o: ID!, $from: Time!, $to: Time!) { usageSummary(organizationId: $o, from: $from, to: $to, groupBy: [ACTION]) { action credits events } }`,
			map[string]any{"o": org, "from": testNow.Add(-24 * 3600e9).Format("2006-01-02T15:04:05Z"), "to": testNow.Add(24 * 3600e9).Format("2006-01-02T15:04:05Z")}, &sum)
		if len(sum.S) != 2 || *sum.S[0].Action != "agent.run" || sum.S[0].Credits != "8" || *sum.S[1].Action != "tenth" || sum.S[1].Credits != "0.3" {
			t.Fatalf("usageSummary = %+v; want agent.run 8, tenth 0.3", sum.S)
		}
		var led struct {
			L struct {
				Edges []struct {
					Node struct{ Kind string } `json:"node"`
				} `json:"edges"`
			} `json:"ledger"`
		}
		e.must(`query($p: ID!) { ledger(poolId: $p, filter: {kinds: [BURN], action: "tenth"}) { edges { node { kind } } } }`, map[string]any{"p": pool}, &led)
		if len(led.L.Edges) != 1 || led.L.Edges[0].Node.Kind != "BURN" {
			t.Fatalf("filtered ledger = %+v; want the one BURN of tenth", led.L.Edges)
		}
		from, to := testNow.Add(-24*3600e9).Format("2006-01-02T15:04:05Z"), testNow.Add(24*3600e9).Format("2006-01-02T15:04:05Z")
		status, body := e.get("/export/ledger.csv?" + url.Values{"organizationId": {org}, "from": {from}, "to": {to}}.Encode())
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if status != http.StatusOK || err != nil || len(rows) != 4 { // header, GRANT, two BURNs
			t.Fatalf("ledger.csv: %d %v\n%s", status, err, body)
		}
		status, body = e.get("/export/usage.csv?" + url.Values{"organizationId": {org}, "from": {from}, "to": {to}, "action": {"tenth"}}.Encode())
		if rows, err := csv.NewReader(strings.NewReader(body)).ReadAll(); status != http.StatusOK || err != nil || len(rows) != 2 {
			t.Fatalf("usage.csv: %d %v\n%s", status, err, body)
		}
		status, body = e.get("/export/ledger.csv?" + url.Values{"organizationId": {org}, "from": {from}, "to": {testNow.AddDate(2, 0, 0).Format("2006-01-02T15:04:05Z")}}.Encode())
		if status != http.StatusBadRequest || !strings.Contains(body, `"field":"to"`) {
			t.Fatalf("a range over the limit: %d %s", status, body)
		}
		status, _ = e.get("/export/ledger.csv?" + url.Values{"organizationId": {"999999"}, "from": {from}, "to": {to}}.Encode())
		if status != http.StatusNotFound {
			t.Fatalf("an unknown organisation: %d", status)
		}
		e.key = ""
		if status, _ = e.get("/export/ledger.csv?organizationId=" + org); status != http.StatusUnauthorized {
			t.Fatalf("no key: %d, want 401", status)
		}
	})
}

// get sends a GET with the env's key and returns the status and body.
func (e *env) get(path string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.key != "" {
		req.Header.Set("Authorization", "Bearer "+e.key)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
