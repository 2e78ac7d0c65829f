package graph_test

import (
	"strings"
	"testing"

	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

// applyPlaybook through the API: a dry run by default, then applied, then
// unchanged; the export names what it made.
func TestPlaybookThroughTheAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e, _ := lcEnv(t, db)
		e.publishPricing()
		doc := map[string]any{
			"policies": []map[string]any{{"name": "free-failures", "kind": "BURN", "expression": `event.status == "FAILED" ? decimal(0) : weight * event.quantity`}},
			"plans": []map[string]any{{"name": "team", "period": "MONTH", "includedCredits": "1000", "pricePerCredit": "0.01", "platformFee": "9",
				"registerName": "default", "overageMode": "HARD", "rolloverMode": "NONE"}},
		}
		const q = `mutation($d: JSON!, $dry: Boolean!) { applyPlaybook(document: $d, dryRun: $dry) { applied changes { kind name change } } }`
		type planT struct {
			P struct {
				Applied bool
				Changes []struct{ Kind, Name, Change string }
			} `json:"applyPlaybook"`
		}
		var dry, done, again planT
		e.must(`mutation($d: JSON!) { applyPlaybook(document: $d) { applied changes { kind name change } } }`, map[string]any{"d": doc}, &dry)
		if dry.P.Applied || len(dry.P.Changes) != 2 || dry.P.Changes[1].Change != "CREATE" {
			t.Fatalf("dry run = %+v", dry.P)
		}
		e.must(q, map[string]any{"d": doc, "dry": false}, &done)
		e.must(q, map[string]any{"d": doc, "dry": false}, &again)
		if !done.P.Applied || again.P.Changes[0].Change != "UNCHANGED" || again.P.Changes[1].Change != "UNCHANGED" {
			t.Fatalf("applied %+v, then %+v", done.P, again.P)
		}
		var exp struct{ Playbook string }
		e.must(`{ playbook }`, nil, &exp)
		if !strings.Contains(exp.Playbook, "name: team") || !strings.Contains(exp.Playbook, "free-failures") {
			t.Fatalf("export:\n%s", exp.Playbook)
		}
		doc["plans"] = []map[string]any{{"name": "team", "bogus": 1}}
		_, errs := e.do(q, map[string]any{"d": doc, "dry": true})
		wantErr(t, "an unknown field", errs, "VALIDATION")
	})
}
