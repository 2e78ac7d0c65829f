package ledger_test

import (
	"context"
	"testing"

	"github.com/creditd/creditd/credit"
	"github.com/creditd/creditd/playbook"
	"github.com/creditd/creditd/store"
	"github.com/creditd/creditd/testdb"
)

const testPlaybook = `
units:
  - name: agent step
    kind: activity
segments:
  - name: enterprise
    valueModel: hours saved x loaded cost
registers:
  - name: default
    weights:
      - action: agent.run
        credits: 1
      - action: big.run
        credits: 10
      - action: report.write
        credits: 5
        valuePerAction: 2
        costPerAction: 0.01
policies:
  - name: failed-free
    kind: BURN
    expression: 'event.status == "FAILED" ? decimal(0) : weight * event.quantity'
plans:
  - name: team
    period: MONTH
    includedCredits: 1000
    pricePerCredit: 0.01
    platformFee: 9
    registerName: default
    overageMode: SOFT
    overagePrice: 0.012
    rolloverMode: NONE
    family: agents
    tier: 1
`

func TestPlaybookPlanApplyExport(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := setup(t, db) // default v1: agent.run 1, big.run 10
		doc, err := playbook.ParseYAML([]byte(testPlaybook))
		if err != nil {
			t.Fatal(err)
		}
		dry, err := f.svc.ApplyPlaybook(ctx, doc, true)
		if err != nil || dry.Applied || len(dry.Changes) != 3 {
			t.Fatalf("dry run %+v, %v", dry, err)
		}
		want := []string{"REGISTER default NEW_VERSION", "POLICY failed-free CREATE", "PLAN team CREATE"}
		for i, c := range dry.Changes {
			if got := c.Kind + " " + c.Name + " " + c.Change; got != want[i] {
				t.Errorf("change %d = %s, want %s", i, got, want[i])
			}
		}
		if ps, _ := f.svc.Plans(ctx); len(ps) != 0 {
			t.Fatal("a dry run created a plan")
		}
		applied, err := f.svc.ApplyPlaybook(ctx, doc, false)
		if err != nil || !applied.Applied {
			t.Fatalf("apply %+v, %v", applied, err)
		}
		again, err := f.svc.ApplyPlaybook(ctx, doc, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range again.Changes {
			if c.Change != "UNCHANGED" {
				t.Errorf("re-applying changed %s %s: %s", c.Kind, c.Name, c.Change)
			}
		}
		exported, err := f.svc.ExportPlaybook(ctx)
		if err != nil {
			t.Fatal(err)
		}
		y, err := playbook.Marshal(exported)
		if err != nil {
			t.Fatal(err)
		}
		back, err := playbook.ParseYAML(y)
		if err != nil {
			t.Fatalf("the export does not read back: %v\n%s", err, y)
		}
		round, err := f.svc.ApplyPlaybook(ctx, back, false)
		if err != nil {
			t.Fatalf("applying the export: %v\n%s", err, y)
		}
		for _, c := range round.Changes {
			if c.Change != "UNCHANGED" {
				t.Errorf("applying the export changed %s %s: %s", c.Kind, c.Name, c.Change)
			}
		}
		// Whole or nothing: a rule that does not compile in a later section
		// leaves the earlier sections unwritten.
		bad, _ := playbook.ParseYAML([]byte(testPlaybook))
		bad.Registers[0].Weights[0].Credits = d("3")
		bad.Policies[0].Expression = "weight *"
		before, _ := f.svc.Register(ctx, "default", nil)
		if _, err := f.svc.ApplyPlaybook(ctx, bad, false); credit.CodeOf(err) != credit.CodeRuleCompile {
			t.Fatalf("a broken rule: %v, want RULE_COMPILE", err)
		}
		if after, _ := f.svc.Register(ctx, "default", nil); after.Version != before.Version {
			t.Fatal("a failing playbook published a register version")
		}
		changed, _ := playbook.ParseYAML([]byte(testPlaybook))
		changed.Plans[0].PlatformFee = d("19")
		if _, err := f.svc.ApplyPlaybook(ctx, changed, true); credit.CodeOf(err) != credit.CodeConflict {
			t.Fatalf("a changed plan: %v, want CONFLICT", err)
		}
		for _, c := range []struct {
			name, yaml string
			code       credit.Code
		}{
			{"an unknown field", "registers:\n  - name: x\n    weigths: []\n", credit.CodeValidation},
			{"duplicate actions", "registers:\n  - name: x\n    weights:\n      - {action: a, credits: 1}\n      - {action: a, credits: 2}\n", credit.CodeValidation},
			{"a missing register", "plans:\n  - {name: p, period: MONTH, includedCredits: 1, pricePerCredit: 1, platformFee: 0, registerName: nope, overageMode: HARD, rolloverMode: NONE}\n", credit.CodeNotFound},
		} {
			doc, err := playbook.ParseYAML([]byte(c.yaml))
			if err == nil {
				_, err = f.svc.ApplyPlaybook(ctx, doc, true)
			}
			if credit.CodeOf(err) != c.code {
				t.Errorf("%s: %v, want %s", c.name, err, c.code)
			}
		}
		verify(t, f.svc)
	})
}
