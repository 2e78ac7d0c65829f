package graph

import (
	"context"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/creditd/creditd/engine/ledger"
)

// complexityOf weighs one operation as the server does.
func complexityOf(t *testing.T, query string, vars map[string]any) int {
	t.Helper()
	es := NewExecutableSchema(Config{Complexity: costs(ledger.DefaultMaxBatch)})
	doc, errs := gqlparser.LoadQuery(es.Schema(), query)
	if len(errs) > 0 {
		t.Fatalf("%s\ndoes not validate: %v", query, errs)
	}
	return complexity.Calculate(context.Background(), es, doc.Operations[0], vars)
}

// A page of 500 ledger entries with their grant, usage event, pool and
// organisation: admitted. The same page listing, for each entry, its pool's
// organisation's pools and their grants: refused.
const (
	pageQuery = `{ ledger(poolId: "1", first: 500) { edges { node { id kind amount
  pool { id name organization { id name } }
  grant { id creditType remaining pool { id } }
  usageEvent { id action credits pool { id organization { id } } } } } pageInfo { hasNextPage } } }`
	pageOfListsQuery = `{ ledger(poolId: "1", first: 500) { edges { node { id amount
  usageEvent { id action } grant { id pool { organization { pools { grants { id } } } } } } } } }`
)

func TestComplexity(t *testing.T) {
	inputs := func(n int) map[string]any {
		ins := make([]any, n)
		for i := range ins {
			ins[i] = map[string]any{"idempotencyKey": "k", "organizationId": "1", "action": "a"}
		}
		return map[string]any{"ins": ins}
	}
	for _, c := range []struct {
		name  string
		query string
		vars  map[string]any
		want  int
	}{
		{"pool by id", `{ pool(id: "1") { id name } }`, nil, 3},
		{"ledger, first omitted (50)", `{ ledger(poolId: "1") { edges { node { id } } } }`, nil, 151},
		{"ledger(first: 2)", `{ ledger(poolId: "1", first: 2) { edges { node { id } } } }`, nil, 7},
		{"ledger(first: 500)", `{ ledger(poolId: "1", first: 500) { edges { node { id } } } }`, nil, 1501},
		{"ledger(first: 100000) counts 500 (the resolver refuses it)", `{ ledger(poolId: "1", first: 100000) { edges { node { id } } } }`, nil, 1501},
		{"ledger(first: $n)", `query($n: Int) { ledger(poolId: "1", first: $n) { edges { node { id } } } }`, map[string]any{"n": 10}, 31},
		{"charges(first: 500)", `{ charges(first: 500) { edges { node { id amount } } } }`, nil, 2001},
		{"auditLog(first: 100)", `{ auditLog(first: 100) { edges { node { id action } } } }`, nil, 401},
		{"alerts(first: 20)", `{ alerts(first: 20) { id message } }`, nil, 41},
		{"an organisation's pools (10)", `{ organization(id: "1") { pools { id name } } }`, nil, 22},
		{"a pool's grants and balance", `{ pool(id: "1") { grants { id remaining } balance { available byType { creditType available } } } }`, nil, 37},
		{"a page of 500 with nested objects", pageQuery, nil, 13501},
		{"a page of 500 listing lists", pageOfListsQuery, nil, 61001},
		{"two pages of 500", `{ a: ledger(poolId: "1", first: 500) { edges { node { id amount grant { id } usageEvent { id action } } } }
  b: ledger(poolId: "2", first: 500) { edges { node { id amount grant { id } usageEvent { id action } } } } }`, nil, 2 * 4501},
		{"recordUsageBatch of 3", `mutation($ins: [UsageInput!]!) { recordUsageBatch(inputs: $ins) { decision draws { grant { id } amount } } }`, inputs(3), 97},
		{"recordUsageBatch of 1000", `mutation($ins: [UsageInput!]!) { recordUsageBatch(inputs: $ins) { decision draws { grant { id } amount } } }`, inputs(1000), 32001},
		{"recordUsageBatch of 5000 counts the batch limit (the resolver refuses it)", `mutation($ins: [UsageInput!]!) { recordUsageBatch(inputs: $ins) { decision } }`, inputs(5000), 1001},
		// TestAccessTenantIsolation's deepest queries.
		{"nested organisation", `query($id: ID!) { organization(id: $id) { id pools { id organization { id pools { id
  grants(includeEmpty: true) { id pool { id organization { id pools { id parent { id } } } } } } } } } }`, nil, 36243},
		{"nested ledger", `query($id: ID!) { ledger(poolId: $id, first: 500) { edges { node { id pool { id organization { id } }
  grant { id pool { id organization { id } } } usageEvent { id pool { id organization { id pools { id } } } } } } } }`, nil, 15001},
	} {
		if got := complexityOf(t, c.query, c.vars); got != c.want {
			t.Errorf("%s: complexity = %d, want %d", c.name, got, c.want)
		}
	}
	if got := complexityOf(t, pageQuery, nil); got > DefaultComplexityLimit {
		t.Errorf("a page of 500 with nested objects: complexity %d, over the default limit %d", got, DefaultComplexityLimit)
	}
	if got := complexityOf(t, pageOfListsQuery, nil); got <= DefaultComplexityLimit {
		t.Errorf("a page of 500 listing lists: complexity %d, within the default limit %d", got, DefaultComplexityLimit)
	}
}

// TestEveryListHasACost: a list field counts its rows (a connection's edges
// excepted: its page counts them), so a new list cannot slip in at the
// weight of one object.
func TestEveryListHasACost(t *testing.T) {
	root := reflect.ValueOf(costs(ledger.DefaultMaxBatch))
	schema := NewExecutableSchema(Config{}).Schema()
	for _, def := range schema.Types {
		if def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if f.Type.Elem == nil || strings.HasPrefix(f.Name, "__") || strings.HasSuffix(def.Name, "Connection") && f.Name == "edges" {
				continue
			}
			typ := root.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, def.Name) })
			if !typ.IsValid() {
				t.Errorf("%s.%s: no %s in ComplexityRoot", def.Name, f.Name, def.Name)
				continue
			}
			if fn := typ.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, f.Name) }); !fn.IsValid() || fn.IsNil() {
				t.Errorf("%s.%s is a list without a cost: add it to costs (complexity.go)", def.Name, f.Name)
			}
		}
	}
	if n := len(schema.Types["CreditType"].EnumValues); n != creditTypes {
		t.Errorf("creditTypes = %d, want %d (the CreditType values)", creditTypes, n)
	}
}

// TestREADMEQueries: every operation the README shows is within the default
// limit, except the one it shows refused, whose answer names its complexity.
func TestREADMEQueries(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "```graphql"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case !in:
		case strings.HasPrefix(line, "{"), strings.HasPrefix(line, "query"), strings.HasPrefix(line, "mutation"):
			ops = append(ops, line+"\n")
		case len(ops) > 0:
			ops[len(ops)-1] += line + "\n"
		}
	}
	if len(ops) < 5 {
		t.Fatalf("found %d operations in the README, want its examples", len(ops))
	}
	refused := 0
	for _, op := range ops {
		got := complexityOf(t, op, nil)
		if strings.Contains(op, "COMPLEXITY_LIMIT_EXCEEDED") {
			refused++
			if got <= DefaultComplexityLimit || !strings.Contains(op, "complexity "+strconv.Itoa(got)+",") {
				t.Errorf("README shows refused:\n%s\nits complexity is %d (limit %d)", op, got, DefaultComplexityLimit)
			}
			continue
		}
		if got > DefaultComplexityLimit {
			t.Errorf("README shows:\n%s\nits complexity %d is over the limit %d", op, got, DefaultComplexityLimit)
		}
	}
	if refused == 0 {
		t.Errorf("the README shows no operation refused for its complexity")
	}
}
