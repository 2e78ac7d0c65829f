package playbook_test

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/creditd/creditd/playbook"
)

// The example parses, and the JSON Schema names exactly the fields the
// parser knows (top level, plans, weights): the two cannot drift apart.
func TestExampleAndSchema(t *testing.T) {
	data, err := os.ReadFile("../examples/agent-vendor.playbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := playbook.ParseYAML(data)
	if err != nil || len(doc.Registers) != 1 || len(doc.Plans) != 2 || len(doc.Plans[1].OverageTiers) != 2 {
		t.Fatalf("example: %+v, %v", doc, err)
	}
	raw, err := os.ReadFile("../docs/playbook.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]struct {
			Items struct {
				Properties map[string]struct {
					Items struct {
						Properties map[string]any `json:"properties"`
					} `json:"items"`
				} `json:"properties"`
			} `json:"items"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	for _, c := range []struct {
		what   string
		typ    any
		schema []string
	}{
		{"document", playbook.Document{}, keys(schema.Properties)},
		{"plans", playbook.Plan{}, keys(schema.Properties["plans"].Items.Properties)},
		{"weights", playbook.Weight{}, keys(schema.Properties["registers"].Items.Properties["weights"].Items.Properties)},
	} {
		if got := strings.Join(jsonFields(c.typ), ","); got != strings.Join(c.schema, ",") {
			t.Errorf("%s: the parser knows %s, the schema %s", c.what, got, strings.Join(c.schema, ","))
		}
	}
	if _, err := playbook.ParseYAML([]byte("plans:\n  - name: x\n    colour: red\n")); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("an unknown field: %v", err)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	var out []string
	for i := 0; i < t.NumField(); i++ {
		out = append(out, strings.Split(t.Field(i).Tag.Get("json"), ",")[0])
	}
	sort.Strings(out)
	return out
}
