package graph

import (
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

// builtinTypes are GraphQL's own scalars: described by the specification,
// not by this schema.
var builtinTypes = map[string]bool{"String": true, "Int": true, "Float": true, "Boolean": true, "ID": true}

// builtinDirectives are declared by gqlparser's prelude.
var builtinDirectives = map[string]bool{"include": true, "skip": true, "deprecated": true, "specifiedBy": true,
	"defer": true, "oneOf": true}

// undescribed returns why a description is not one: empty, or the
// "(added)" marker of the days when additions to the contract were flagged.
func undescribed(desc string) string {
	d := strings.TrimSpace(desc)
	switch {
	case d == "":
		return "no description"
	case strings.HasPrefix(d, "(added)"):
		return "description starts with (added)"
	}
	return ""
}

// describeProblems walks every type, field, argument, input field and enum
// value of the schema that is not GraphQL's own, and every directive the
// schema declares, and lists each one that is not described.
func describeProblems(s *ast.Schema) []string {
	var out []string
	check := func(what, desc string) {
		if why := undescribed(desc); why != "" {
			out = append(out, what+": "+why)
		}
	}
	for _, name := range sortedTypeNames(s) {
		def := s.Types[name]
		check(name, def.Description)
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			check(name+"."+f.Name, f.Description)
			for _, a := range f.Arguments {
				check(name+"."+f.Name+"("+a.Name+")", a.Description)
			}
		}
		for _, v := range def.EnumValues {
			check(name+"."+v.Name, v.Description)
		}
	}
	for name, d := range s.Directives {
		if builtinDirectives[name] {
			continue
		}
		check("@"+name, d.Description)
		for _, a := range d.Arguments {
			check("@"+name+"("+a.Name+")", a.Description)
		}
	}
	sort.Strings(out)
	return out
}

// sortedTypeNames is the schema's own types, by name.
func sortedTypeNames(s *ast.Schema) []string {
	var names []string
	for name := range s.Types {
		if strings.HasPrefix(name, "__") || builtinTypes[name] {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// TestDescribeEverything: tools (the playground, client generators, the
// schema linter) show a schema's descriptions as its documentation, so
// every element of ours has one, and none carries the old "(added)" mark.
func TestDescribeEverything(t *testing.T) {
	s := NewExecutableSchema(Config{}).Schema()
	problems := describeProblems(s)
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) > 0 {
		t.Logf("%d schema elements lack a real description", len(problems))
	}
}

// TestDescribeScalarsSpecifiedBy: a custom scalar says where its wire
// format is specified (@specifiedBy, introspected as specifiedByURL).
func TestDescribeScalarsSpecifiedBy(t *testing.T) {
	s := NewExecutableSchema(Config{}).Schema()
	for _, name := range sortedTypeNames(s) {
		def := s.Types[name]
		if def.Kind != ast.Scalar {
			continue
		}
		d := def.Directives.ForName("specifiedBy")
		if d == nil {
			t.Errorf("scalar %s has no @specifiedBy", name)
			continue
		}
		url := d.Arguments.ForName("url")
		if url == nil || !strings.HasPrefix(url.Value.Raw, "https://") {
			t.Errorf("scalar %s: @specifiedBy needs an https url, got %v", name, url)
		}
	}
}

// TestDescribeProblemsFindsGaps: the walk itself sees every kind of element.
func TestDescribeProblemsFindsGaps(t *testing.T) {
	s := &ast.Schema{Types: map[string]*ast.Definition{
		"T": {Kind: ast.Object, Name: "T", Description: "(added) a type", Fields: ast.FieldList{
			{Name: "f", Description: "ok", Arguments: ast.ArgumentDefinitionList{{Name: "a"}}},
			{Name: "__typename"}}},
		"E":      {Kind: ast.Enum, Name: "E", Description: "ok", EnumValues: ast.EnumValueList{{Name: "V", Description: " "}}},
		"String": {Kind: ast.Scalar, Name: "String"},
	}, Directives: map[string]*ast.DirectiveDefinition{"skip": {Name: "skip"}, "d": {Name: "d", Description: "ok",
		Arguments: ast.ArgumentDefinitionList{{Name: "x"}}}}}
	got := strings.Join(describeProblems(s), "; ")
	want := "@d(x): no description; E.V: no description; T.f(a): no description; T: description starts with (added)"
	if got != want {
		t.Errorf("describeProblems = %q, want %q", got, want)
	}
}
